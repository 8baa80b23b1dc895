//! The callbacks, one file each (registered in [`super::callback::REGISTRY`]).

pub mod early_stopping;
