//! A lab bigger than the file-descriptor limit allows fails with an error that says so. Its
//! own test binary: lowering the hard limit cannot be undone in a process. Needs root.

mod common;

use common::privileged;
use nix::sys::resource::{Resource, setrlimit};
use tcplab::lab::Lab;
use tcplab::spec::{HostSpec, Topology};

#[test]
fn running_out_of_file_descriptors_says_so() {
    if !privileged() {
        return;
    }
    // Hard and soft: tcplab cannot raise this one.
    setrlimit(Resource::RLIMIT_NOFILE, 128, 128).unwrap();
    let topology = (1..=100).fold(Topology::new("10.0.0.0/24".parse().unwrap()), |t, i| {
        t.host(HostSpec::new(format!("h{i}")))
    });
    let error = match Lab::build(&topology) {
        Ok(_) => panic!("100 hosts cannot fit in 128 file descriptors"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("out of file descriptors"), "{error}");
    assert!(error.contains("ulimit -n"), "{error}");
    assert!(!error.contains("CAP_SYS_ADMIN"), "{error}");
}
