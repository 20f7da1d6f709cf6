//! placeholder

pub mod output_mask;
pub mod shell_lines;
