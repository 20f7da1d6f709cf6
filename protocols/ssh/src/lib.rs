//! placeholder

pub mod output_mask;
