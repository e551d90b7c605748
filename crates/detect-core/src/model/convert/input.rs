//! Pass `read-input`: the image input's size and how its values relate to 8-bit pixels, so the
//! preprocess can feed the converted (float) input exactly what the 8-bit model expected.

use tract_tflite::tflite::TensorType;

use super::source::{name_of, quantization, shape_of, Source};
use super::Plan;
use crate::model::{InputQuantization, InputSpec, ModelError};

/// One [1, height, width, 3] image input, uint8/int8 with one scale or float32; it starts the
/// graph inputs (the 8-bit convolutions' stand-ins follow it).
pub(super) fn read_input(source: &Source, plan: &mut Plan) -> Result<(), ModelError> {
    let inputs: Vec<i32> = source
        .graph
        .inputs()
        .map(|v| v.iter().collect())
        .unwrap_or_default();
    if inputs.len() != 1 {
        return Err(ModelError::unsupported(format!(
            "the model has {} inputs, expected 1 image",
            inputs.len()
        )));
    }
    let input_tensor = source.tensors.get(inputs[0])?;
    let input_shape = shape_of(&input_tensor)?;
    if input_shape.len() != 4 || input_shape[0] != 1 || input_shape[3] != 3 {
        return Err(ModelError::unsupported(format!(
            "input '{}' has shape {input_shape:?}, expected [1, height, width, 3]",
            name_of(&input_tensor)
        )));
    }
    let quantization = match (input_tensor.type_(), quantization(&input_tensor)) {
        (TensorType::UINT8 | TensorType::INT8, Some(q)) if q.scales.len() == 1 => {
            // An int8 input holds pixel-128; fold that into the zero point so the preprocess
            // always works on 0..=255 pixels.
            let shift = if input_tensor.type_() == TensorType::INT8 {
                128.0
            } else {
                0.0
            };
            InputQuantization {
                scale: q.scales[0],
                zero_point: q.zero_points[0] as f32 + shift,
            }
        }
        // A float model: SSD MobileNet's float convention, (x - 127.5) / 127.5.
        (TensorType::FLOAT32, None) => InputQuantization {
            scale: 1.0 / 127.5,
            zero_point: 127.5,
        },
        (ty, _) => {
            return Err(ModelError::unsupported(format!(
                "input '{}' has type {:?}, expected uint8/int8 quantized or float32",
                name_of(&input_tensor),
                ty.variant_name()
            )))
        }
    };
    plan.input = Some(InputSpec {
        name: name_of(&input_tensor),
        height: input_shape[1],
        width: input_shape[2],
        channels: 3,
        quantization,
    });
    plan.graph_inputs = inputs;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, TinyModel, IMAGE};
    use super::*;

    #[test]
    fn reads_size_and_pixel_quantization() {
        let bytes = TinyModel::ssd().build();
        let source = Source::parse(&bytes).unwrap();
        let plan = run(&source, &["read-input"]).unwrap();
        let input = plan.input.unwrap();
        assert_eq!(
            (input.name.as_str(), input.height, input.width),
            ("image", 4, 4)
        );
        assert_eq!(
            input.quantization,
            InputQuantization {
                scale: 1.0 / 128.0,
                zero_point: 128.0
            }
        );
        assert_eq!(plan.graph_inputs, [IMAGE]);
    }

    #[test]
    fn the_bundled_model_takes_300x300_pixels() {
        let source = Source::parse(crate::model::EMBEDDED_MODEL).unwrap();
        let input = run(&source, &["read-input"]).unwrap().input.unwrap();
        assert_eq!((input.height, input.width, input.channels), (300, 300, 3));
        assert_eq!(input.quantization.zero_point, 128.0);
    }
}
