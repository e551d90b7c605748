//! Pass `dequantize-constants`: decide what each tensor becomes in the rewritten model.
//!
//! tract cannot run the model's mixed-scale quantized ops, so every quantized tensor the float
//! graph keeps becomes FLOAT32 and its constant data is dequantized. The pass only decides;
//! [`tensor_data`] computes the floats while the writer copies each tensor, so the ~24 MB of
//! them are built once, straight into the output.

use tract_tflite::tflite;
use tract_tflite::tflite::TensorType;

use super::source::{name_of, quantization, shape_of, Quant, Source};
use super::Plan;
use crate::model::ModelError;

/// What one tensor becomes in the rewritten model.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum TensorFate {
    /// Read only by a removed op: written with its name alone.
    Dropped,
    /// A quantized constant: FLOAT32, its values dequantized.
    Dequantized(Quant),
    /// A constant that is not quantized (e.g. RESHAPE's int32 shape): copied as is, since
    /// tract reads it.
    Copied,
    /// An activation (no data), written with this type.
    Activation(TensorType),
}

/// Decide every tensor's [`TensorFate`] and count the dequantized constants.
pub(super) fn dequantize_constants(source: &Source, plan: &mut Plan) -> Result<(), ModelError> {
    plan.requires(&["cut-postprocess", "split-int8-convs"])?;
    plan.tensors = source
        .tensors
        .list
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if plan.dropped_tensors.contains(&(i as i32)) {
                return TensorFate::Dropped;
            }
            match (quantization(&t), source.constant(&t)) {
                (Some(q), Some(_)) => TensorFate::Dequantized(q),
                (Some(_), None) => TensorFate::Activation(TensorType::FLOAT32),
                (None, Some(_)) => TensorFate::Copied,
                (None, None) => TensorFate::Activation(match t.type_() {
                    TensorType::UINT8 | TensorType::INT8 => TensorType::FLOAT32,
                    other => other,
                }),
            }
        })
        .collect();
    plan.stats.dequantized_constants = plan
        .tensors
        .iter()
        .filter(|f| matches!(f, TensorFate::Dequantized(_)))
        .count();
    Ok(())
}

/// The type and data a tensor is written with, per its fate (`None` type for dropped ones).
pub(super) fn tensor_data<'a>(
    source: &Source<'a>,
    t: &tflite::Tensor<'a>,
    fate: &TensorFate,
) -> Result<(TensorType, Option<Vec<u8>>), ModelError> {
    let data = || source.constant(t).unwrap_or_default();
    Ok(match fate {
        TensorFate::Dropped => (TensorType::FLOAT32, None),
        TensorFate::Dequantized(q) => (
            TensorType::FLOAT32,
            Some(f32_bytes(&dequantize(t, data(), q)?)),
        ),
        TensorFate::Copied => (t.type_(), Some(data().to_vec())),
        TensorFate::Activation(ty) => (*ty, None),
    })
}

/// Raw little-endian values of a constant tensor, widened to f64 so one path serves all types.
pub(super) fn raw_values(t: &tflite::Tensor, data: &[u8]) -> Result<Vec<f64>, ModelError> {
    fn chunks<const N: usize, T>(data: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        data.chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
            .collect()
    }
    let ty = t.type_();
    let values = match ty {
        TensorType::UINT8 => data.iter().map(|&v| v as f64).collect(),
        TensorType::INT8 => data.iter().map(|&v| v as i8 as f64).collect(),
        TensorType::INT16 => chunks::<2, _>(data, |b| i16::from_le_bytes(b) as f64),
        TensorType::INT32 => chunks::<4, _>(data, |b| i32::from_le_bytes(b) as f64),
        TensorType::INT64 => chunks::<8, _>(data, |b| i64::from_le_bytes(b) as f64),
        TensorType::FLOAT32 => chunks::<4, _>(data, |b| f32::from_le_bytes(b) as f64),
        other => {
            return Err(ModelError::unsupported(format!(
                "constant tensor '{}' has type {}, which the float conversion cannot read",
                name_of(t),
                other.variant_name().unwrap_or("unknown")
            )))
        }
    };
    Ok(values)
}

fn element_size(ty: TensorType) -> Option<usize> {
    match ty {
        TensorType::UINT8 | TensorType::INT8 => Some(1),
        TensorType::INT16 => Some(2),
        TensorType::INT32 | TensorType::FLOAT32 => Some(4),
        TensorType::INT64 => Some(8),
        _ => None,
    }
}

/// Dequantize a constant tensor to f32 (`real = scale * (q - zero_point)`, per axis if needed).
pub(super) fn dequantize(
    t: &tflite::Tensor,
    data: &[u8],
    q: &Quant,
) -> Result<Vec<f32>, ModelError> {
    let shape = shape_of(t)?;
    let count: usize = shape.iter().product();
    let size = element_size(t.type_()).unwrap_or(0);
    if size == 0 || data.len() != count * size {
        return Err(ModelError::invalid(format!(
            "constant tensor '{}' holds {} bytes, its shape {:?} needs {}",
            name_of(t),
            data.len(),
            shape,
            count * size.max(1)
        )));
    }
    let channels = q.scales.len();
    // The common case, 8-bit per-tensor: a 256-entry table instead of arithmetic per element.
    if channels == 1 && matches!(t.type_(), TensorType::UINT8 | TensorType::INT8) {
        let signed = t.type_() == TensorType::INT8;
        let (s, z) = (q.scales[0] as f64, q.zero_points[0] as f64);
        let table: Vec<f32> = (0..=255u8)
            .map(|b| {
                let v = if signed { b as i8 as f64 } else { b as f64 };
                (s * (v - z)) as f32
            })
            .collect();
        return Ok(data.iter().map(|&b| table[b as usize]).collect());
    }
    let raw = raw_values(t, data)?;
    if channels == 1 {
        let (s, z) = (q.scales[0] as f64, q.zero_points[0] as f64);
        return Ok(raw.iter().map(|&v| (s * (v - z)) as f32).collect());
    }
    // Per-axis: the channel of element i is its index along `axis`.
    if q.axis >= shape.len() || shape[q.axis] != channels || q.zero_points.len() != channels {
        return Err(ModelError::invalid(format!(
            "tensor '{}' has {} per-axis scales that do not match axis {} of shape {:?}",
            name_of(t),
            channels,
            q.axis,
            shape
        )));
    }
    let inner: usize = shape[q.axis + 1..].iter().product();
    Ok(raw
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / inner) % channels;
            (q.scales[c] as f64 * (v - q.zero_points[c] as f64)) as f32
        })
        .collect())
}

pub(super) fn f32_bytes(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, run_with, TinyModel, ANCHORS, IMAGE};
    use super::super::ConvertOptions;
    use super::*;

    const ALL: &[&str] = &[
        "cut-postprocess",
        "read-input",
        "restore-activations",
        "split-int8-convs",
        "dequantize-constants",
    ];

    #[test]
    fn per_axis_constants_use_their_channels_scale() {
        let mut m = TinyModel::ssd();
        // Two channels along axis 0, zero points 1 and 2.
        let quant = (vec![0.5, 2.0], vec![1, 2], 0);
        let t = m.tensor_per_axis(
            "w",
            TensorType::INT8,
            &[2, 2],
            Some(quant),
            Some(vec![3, 1, 4, 0xff]),
        );
        let bytes = m.build();
        let source = Source::parse(&bytes).unwrap();
        let tensor = source.tensors.get(t).unwrap();
        let q = quantization(&tensor).unwrap();
        let values = dequantize(&tensor, source.constant(&tensor).unwrap(), &q).unwrap();
        assert_eq!(values, [1.0, 0.0, 4.0, -6.0]);
    }

    #[test]
    fn a_constant_of_the_wrong_size_is_an_error() {
        let mut m = TinyModel::ssd();
        let t = m.tensor(
            "short",
            TensorType::UINT8,
            &[4],
            Some((1.0, 0)),
            Some(vec![1, 2]),
        );
        let bytes = m.build();
        let source = Source::parse(&bytes).unwrap();
        let tensor = source.tensors.get(t).unwrap();
        let q = quantization(&tensor).unwrap();
        let err = dequantize(&tensor, source.constant(&tensor).unwrap(), &q).unwrap_err();
        assert!(err.to_string().contains("'short' holds 2 bytes"), "{err}");
    }

    #[test]
    fn fates_follow_quantization_and_data() {
        let mut m = TinyModel::ssd();
        let shape = m.tensor(
            "shape",
            TensorType::INT32,
            &[1],
            None,
            Some(vec![1, 0, 0, 0]),
        );
        let index = m.tensor("index", TensorType::INT32, &[1], None, None);
        let bytes = m.build();
        let source = Source::parse(&bytes).unwrap();
        let plan = run(&source, ALL).unwrap();
        let fate = |t: i32| plan.tensors[t as usize].clone();
        assert_eq!(fate(IMAGE), TensorFate::Activation(TensorType::FLOAT32));
        assert_eq!(fate(ANCHORS), TensorFate::Dropped);
        assert_eq!(fate(shape), TensorFate::Copied);
        assert_eq!(fate(index), TensorFate::Activation(TensorType::INT32));
        assert_eq!(plan.stats.dequantized_constants, 0);
        let (ty, data) =
            tensor_data(&source, &source.tensors.get(shape).unwrap(), &fate(shape)).unwrap();
        assert_eq!((ty, data), (TensorType::INT32, Some(vec![1, 0, 0, 0])));
    }

    #[test]
    fn the_bundled_model_dequantizes_144_constants_or_34_beside_the_8_bit_convs() {
        let source = Source::parse(crate::model::EMBEDDED_MODEL).unwrap();
        let float = run(&source, ALL).unwrap();
        let int8 = run_with(&source, ConvertOptions { int8_convs: true }, ALL).unwrap();
        assert_eq!(float.stats.dequantized_constants, 144);
        assert_eq!(int8.stats.dequantized_constants, 34);
    }
}
