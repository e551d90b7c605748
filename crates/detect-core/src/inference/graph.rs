//! Graph rewrites on tract's model of the float graph: put the project's ops in (fused
//! depthwise convolutions, the 8-bit convolutions the conversion left out of the float graph)
//! and let them hand 8-bit values to each other.

use tract_tflite::internal::tract_core::ops::cnn::{Conv, PaddingSpec};
use tract_tflite::internal::*;

use super::kernels::depthwise::Depthwise;
use super::kernels::KernelSet;
use super::ops::{ConvInt8, FusedDepthwise};

/// Connect each convolution the conversion kept in 8 bits: its input (an extra graph output)
/// through one [`ConvInt8`] op to where its output was used (an extra graph input), then drop
/// the extra inputs and outputs.
pub fn use_int8_convs(
    model: &mut TypedModel,
    sites: &[crate::model::Int8ConvSite],
    kernels: &'static KernelSet,
) -> TractResult<()> {
    if sites.is_empty() {
        return Ok(());
    }
    let (inputs, outputs) = (model.input_outlets()?.len(), model.output_outlets()?.len());
    let real_inputs = inputs - sites.len();
    for site in sites {
        // Read the outlets afresh: an earlier patch may have replaced one (a convolution whose
        // input is another 8-bit convolution's output).
        let source = model.input_outlets()?[site.graph_input];
        let input = model.output_outlets()?[site.graph_output];
        let mut patch = TypedModelPatch::new(format!("8-bit {}", site.name));
        let tapped = patch.tap_model(model, input)?;
        let op = ConvInt8::new(&site.spec, kernels).with_context(|| site.name.clone())?;
        let out = patch.wire_node(format!("{}.int8", site.name), op, &[tapped])?[0];
        patch.shunt_outside(model, source, out)?;
        patch.apply(model)?;
    }
    ensure!(outputs >= 2, "the float graph has {outputs} outputs");
    let keep_inputs = model.input_outlets()?[..real_inputs].to_vec();
    let keep_outputs = model.output_outlets()?[..2].to_vec();
    model.set_input_outlets(&keep_inputs)?;
    model.select_output_outlets(&keep_outputs)?;
    Ok(())
}

/// The 8-bit quantization an op of ours reads its input with, if it can read 8-bit values.
fn u8_input_quant(node: &TypedNode) -> Option<crate::model::TensorQuant> {
    if let Some(conv) = node.op_as::<ConvInt8>() {
        Some(conv.input_quant())
    } else {
        node.op_as::<FusedDepthwise>()?.input_quant
    }
}

/// Where one of our ops feeds only ops of ours that read the same 8-bit quantization (the
/// model's own for that tensor), pass 8-bit values instead of f32: a quarter of the memory
/// traffic, and the rounding LiteRT applies there anyway.
pub fn hand_off_u8(model: &mut TypedModel) -> TractResult<()> {
    let outputs = model.output_outlets()?.to_vec();
    for id in model.eval_order()? {
        let node = model.node(id);
        let quant = if let Some(conv) = node.op_as::<ConvInt8>() {
            conv.output_quant()
        } else if let Some(dw) = node.op_as::<FusedDepthwise>() {
            dw.output_quant
        } else {
            continue;
        };
        let Some(quant) = quant else { continue };
        let outlet = OutletId::new(id, 0);
        let consumers = model.outlet_successors(outlet).to_vec();
        let all_ours = !consumers.is_empty()
            && !outputs.contains(&outlet)
            && consumers.iter().all(|inlet| {
                inlet.slot == 0 && u8_input_quant(model.node(inlet.node)) == Some(quant)
            });
        if !all_ours {
            continue;
        }
        switch_to_u8(model.node_mut(id), false)?;
        let shape = model.node(id).outputs[0].fact.shape.clone();
        model.node_mut(id).outputs[0].fact = u8::fact(shape);
        for inlet in consumers {
            switch_to_u8(model.node_mut(inlet.node), true)?;
        }
    }
    Ok(())
}

/// Make an op of ours read (`input`) or write 8-bit values.
fn switch_to_u8(node: &mut TypedNode, input: bool) -> TractResult<()> {
    node.op = if let Some(conv) = node.op_as::<ConvInt8>() {
        Box::new(if input {
            conv.with_u8_input()
        } else {
            conv.with_u8_output()
        })
    } else if let Some(dw) = node.op_as::<FusedDepthwise>() {
        Box::new(if input {
            dw.with_u8_input()
        } else {
            dw.with_u8_output()
        })
    } else {
        bail!("{} cannot pass 8-bit values", node.name)
    };
    Ok(())
}

/// Replace each depthwise `Conv` the conversion marked with one [`FusedDepthwise`] op.
pub fn fuse_depthwise(
    model: &mut TypedModel,
    marked: &std::collections::HashMap<String, crate::model::DepthwiseSite>,
    kernels: &'static KernelSet,
) -> TractResult<()> {
    for (name, site) in marked {
        let node = model.node_by_name(name)?.clone();
        let conv = node
            .op_as::<Conv>()
            .with_context(|| format!("{name} is not a convolution"))?;
        let input = model
            .outlet_fact(node.inputs[0])?
            .shape
            .as_concrete()
            .map(|s| s.to_vec());
        let Some(input) = input.filter(|s| s.len() == 4) else {
            bail!("{name}: input shape is not concrete NHWC")
        };
        let konst = |i: usize| -> TractResult<Vec<f32>> {
            let fact = model.outlet_fact(node.inputs[i])?;
            let k = fact
                .konst
                .as_ref()
                .with_context(|| format!("{name}: input {i} is not constant"))?;
            Ok(k.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
        };
        let (kernel, mut bias) = (konst(1)?, konst(2)?);
        // A zero padding tap must add nothing (see `PaddedRows`): finite weights only.
        ensure!(
            kernel.iter().all(|w| w.is_finite()),
            "{name}: non-finite depthwise weights"
        );
        // -0.0 + 0.0 is +0.0, every other value stays: see `Depthwise::bias`.
        bias.iter_mut().for_each(|b| *b += 0.0);
        let ks = &conv.pool_spec.kernel_shape;
        let channels = input[3];
        ensure!(
            ks.len() == 2 && kernel.len() == ks[0] * ks[1] * channels && bias.len() == channels
        );
        let strides = conv.pool_spec.strides();
        let same = match conv.pool_spec.padding {
            PaddingSpec::SameUpper => true,
            PaddingSpec::Valid => false,
            ref other => bail!("{name}: padding {other:?}"),
        };
        let (oh, pt) = Depthwise::geometry(input[1], ks[0], strides[0], same);
        let (ow, pl) = Depthwise::geometry(input[2], ks[1], strides[1], same);
        let dw = Depthwise {
            in_hw: (input[1], input[2]),
            out_hw: (oh, ow),
            channels,
            kernel_hw: (ks[0], ks[1]),
            stride: (strides[0], strides[1]),
            pad_before: (pt, pl),
            kernel: Arc::new(kernel),
            bias: Arc::new(bias),
            clamp: site.clamp,
            input_quant: site.input_quant,
            output_quant: site.output_quant,
        };
        let op = FusedDepthwise::new(dw, kernels);
        let patch = TypedModelPatch::replace_single_op(model, &node, &[node.inputs[0]], op)?;
        patch.apply(model)?;
    }
    Ok(())
}
