//! Which images a subcommand works on: files as given, images found under directories, ids
//! relative to the directory, and the bundled samples when no path is given.

use std::path::{Path, PathBuf};

use detect_core::preprocess::IMAGE_EXTENSIONS;

use crate::args::OutputArgs;

/// Files as given, plus images found under directories (sorted, so runs are repeatable).
pub fn collect_images(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, bool), String> {
    let mut files = Vec::new();
    let mut from_dirs = false;
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(&path, out)?;
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                out.push(path);
            }
        }
        Ok(())
    }
    for path in paths {
        if path.is_dir() {
            from_dirs = true;
            walk(path, &mut files)
                .map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok((files, from_dirs))
}

/// The collection as (id, path): ids relative to the directory given.
pub fn collection(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    for p in paths {
        let (files, _) = collect_images(std::slice::from_ref(p))?;
        for f in files {
            let id = if p.is_dir() {
                detect_eval::client::image_id(p, &f)
            } else {
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            out.push((id, f));
        }
    }
    if out.is_empty() {
        return Err("no images found".into());
    }
    Ok(out)
}

pub fn dataset_label(output: &OutputArgs, paths: &[PathBuf]) -> String {
    output.dataset.clone().unwrap_or_else(|| {
        paths
            .first()
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "images".into())
    })
}

/// The given paths, or the bundled sample images when none are given.
pub fn paths_or_samples(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/images"
        ))]
    } else {
        paths.to_vec()
    }
}
