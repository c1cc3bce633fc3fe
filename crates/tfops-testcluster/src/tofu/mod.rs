//! tofu-controller v0.16.5 simulation — placeholder, being written.
