//! The project's tract ops: thin wrappers that check facts, hold packed weights and hand the
//! arithmetic to the kernel set they were built with.

pub mod conv_int8;
pub mod depthwise;
pub mod im2col;
pub mod io;

pub use conv_int8::ConvInt8;
pub use depthwise::FusedDepthwise;
