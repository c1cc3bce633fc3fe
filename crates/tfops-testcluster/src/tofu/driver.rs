//! placeholder
pub struct SimConfig;
pub struct TofuSim;
