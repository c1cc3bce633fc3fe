//! Real Helm 4 and Helm 3 binaries (scripts/fetch-helm.sh) with the plugin against the test API server:
//! install, render, example modules, plugins, the plugin's install hook against a fake release,
//! the release workflow's names, uninstall (hook and client guard), orphans, demo.

mod common;
mod fake_release;

mod helm_demo;
mod helm_example_modules;
mod helm_install;
mod helm_install_hook;
mod helm_orphans;
mod helm_plugins;
mod helm_render;
mod helm_uninstall;
mod release_workflow;
