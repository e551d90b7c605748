//! Fail early, with the fix, when the model files the library embeds were not fetched.
fn main() {
    for file in [
        "mobilenet_ssd_v2_coco_quant_postprocess.tflite",
        "coco_labels.txt",
    ] {
        let path = std::path::Path::new("../../models").join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        if !path.exists() {
            panic!(
                "models/{file} is missing: run scripts/fetch-model.sh (needs npm) to fetch the \
                 model, then build again"
            );
        }
    }
}
