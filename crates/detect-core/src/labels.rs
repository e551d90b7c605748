//! Class labels. The COCO file has lines `ID  label` whose IDs skip numbers (11 is absent),
//! so labels are looked up by ID, never by line number.

use std::collections::BTreeMap;

/// Why a label file could not be read (the model's loader wraps it in its own error).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LabelsError(pub String);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    by_id: BTreeMap<usize, String>,
}

impl Labels {
    /// Parse `ID label` lines; a file without numeric IDs is read as one label per line.
    pub fn parse(text: &str) -> Result<Self, LabelsError> {
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let numbered = lines.iter().all(|l| {
            l.split_once(char::is_whitespace)
                .is_some_and(|(id, _)| id.parse::<usize>().is_ok())
        });
        let mut by_id = BTreeMap::new();
        for (index, line) in lines.iter().enumerate() {
            let (id, label) = if numbered {
                let (id, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                (id.parse::<usize>().unwrap_or(index), rest.trim())
            } else {
                (index, *line)
            };
            if by_id.insert(id, label.to_string()).is_some() {
                return Err(LabelsError(format!("label ID {id} appears twice")));
            }
        }
        if by_id.is_empty() {
            return Err(LabelsError("the label file is empty".into()));
        }
        Ok(Labels { by_id })
    }

    /// The label of a class ID; IDs missing from the file get a stable placeholder.
    pub fn name(&self, id: usize) -> String {
        self.by_id
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("class {id}"))
    }

    /// Find a class by ID ("17") or label ("cat", case-insensitive).
    pub fn resolve(&self, class: &str) -> Option<usize> {
        let class = class.trim();
        if let Ok(id) = class.parse::<usize>() {
            return Some(id);
        }
        self.by_id
            .iter()
            .find(|(_, l)| l.eq_ignore_ascii_case(class))
            .map(|(&id, _)| id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_not_line_numbers() {
        let labels = Labels::parse("0  person\n1  bicycle\n12  stop sign\n").unwrap();
        assert_eq!(labels.name(12), "stop sign");
        assert_eq!(labels.name(2), "class 2");
        assert_eq!(labels.resolve("Stop Sign"), Some(12));
        assert_eq!(labels.resolve("7"), Some(7));
        assert_eq!(labels.resolve("unicorn"), None);
        assert_eq!(labels.len(), 3);
    }

    #[test]
    fn plain_lists_use_line_index() {
        let labels = Labels::parse("cat\ndog\n").unwrap();
        assert_eq!(labels.name(1), "dog");
    }

    #[test]
    fn duplicates_and_empty_files_are_errors() {
        assert!(Labels::parse("1 a\n1 b\n").is_err());
        assert!(Labels::parse("\n\n").is_err());
    }
}
