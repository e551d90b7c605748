//! How the project's ops meet tract: an NHWC op's facts and evaluation, and its input and
//! output as f32 or the original model's 8-bit values (where both ops around a tensor can use
//! them: a quarter of the memory traffic).

use tract_tflite::internal::*;

/// Geometry and element types of an NHWC op of ours (one image shape in, one out).
pub struct NhwcIo {
    pub name: &'static str,
    pub in_hwc: (usize, usize, usize),
    pub out_hwc: (usize, usize, usize),
    pub u8_input: bool,
    pub u8_output: bool,
}

impl NhwcIo {
    /// The output fact, after checking the input's shape and element type.
    pub fn output_fact(&self, input: &TypedFact) -> TractResult<TypedFact> {
        let shape = input.shape.to_tvec();
        let (h, w, c) = self.in_hwc;
        ensure!(
            shape.len() == 4
                && shape[1] == h.to_dim()
                && shape[2] == w.to_dim()
                && shape[3] == c.to_dim(),
            "{} built for {h}x{w}x{c} got {shape:?}",
            self.name
        );
        let want = if self.u8_input {
            u8::datum_type()
        } else {
            f32::datum_type()
        };
        ensure!(
            input.datum_type == want,
            "{} input is {:?}",
            self.name,
            input.datum_type
        );
        let (oh, ow, oc) = self.out_hwc;
        let shape = [shape[0].clone(), oh.to_dim(), ow.to_dim(), oc.to_dim()];
        Ok(if self.u8_output {
            u8::fact(shape)
        } else {
            f32::fact(shape)
        })
    }

    /// Evaluate: check the input, allocate the output, and let `compute` fill all of it.
    pub fn eval(&self, input: &TValue, compute: impl FnOnce(In, Out)) -> TractResult<TValue> {
        let shape = input.shape();
        let (h, w, c) = self.in_hwc;
        ensure!(
            shape.len() == 4 && shape[1..] == [h, w, c],
            "{} built for {h}x{w}x{c} got {shape:?}",
            self.name
        );
        let (oh, ow, oc) = self.out_hwc;
        let out_shape = [shape[0], oh, ow, oc];
        // Safety: every op of ours writes each output element before anything reads it.
        let mut output = unsafe {
            if self.u8_output {
                Tensor::uninitialized::<u8>(&out_shape)?
            } else {
                Tensor::uninitialized::<f32>(&out_shape)?
            }
        };
        {
            let x = input.try_as_plain_ram()?;
            let mut y = output.try_as_plain_ram_mut()?;
            let x = if self.u8_input {
                In::U8(x.as_slice::<u8>()?)
            } else {
                In::F32(x.as_slice::<f32>()?)
            };
            let y = if self.u8_output {
                Out::U8(y.as_slice_mut::<u8>()?)
            } else {
                Out::F32(y.as_slice_mut::<f32>()?)
            };
            compute(x, y);
        }
        Ok(output.into_tvalue())
    }
}

/// An op's input.
#[derive(Clone, Copy)]
pub enum In<'a> {
    F32(&'a [f32]),
    U8(&'a [u8]),
}

/// An op's output.
pub enum Out<'a> {
    F32(&'a mut [f32]),
    U8(&'a mut [u8]),
}
