//! How many inotify watches this process holds on a folder: what a running policy watcher
//! leaves behind, seen from outside the library (`/proc/self/fdinfo`), so tests can check
//! that watchers are shared and stop without a test hook in the public API.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The number of inotify watches, over all of this process's inotify descriptors, on the
/// inode of `folder`.
pub fn watches_on(folder: &Path) -> usize {
    let inode = std::fs::metadata(folder).unwrap().ino();
    let wanted = format!("ino:{inode:x} ");
    let Ok(fds) = std::fs::read_dir("/proc/self/fdinfo") else {
        return 0;
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:") && l.contains(&wanted))
                .count()
        })
        .sum()
}
