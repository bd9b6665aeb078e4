//! Code shared by the end-to-end tests of the root package.

pub mod binaries;
pub mod etcd;
pub mod example;
pub mod http;
pub mod webdriver;
