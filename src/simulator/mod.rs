//! The simulated Azure DevOps organization (filled in by the simulator work).
