//! tfops-guard integration tests, one binary: the classifier over real messages, guard scenarios
//! over real HTTP against the test API server and tofu-controller simulation, randomized fault
//! schedules (`cargo test -p tfops-guard --test main schedules`).

mod support;

mod classify_table;
mod scenarios;
mod schedules;
