//! The admin sockets of a fleet, as given on the command line: each `--socket` is a path,
//! or a pattern whose components may hold `*` (any run of characters) and `?` (one
//! character), such as `/run/mcp-cors/*/cors.sock`. A pattern is expanded again and again
//! while the UI runs, so that a replica started later joins the view.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

/// One `--socket` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketArg {
    /// A path, used as it is (a server that is down is retried there).
    Path(PathBuf),
    /// A pattern: the sockets that match it now.
    Pattern(PathBuf),
}

impl SocketArg {
    /// Reads `arg`: a pattern when it holds `*` or `?`.
    pub fn new(arg: PathBuf) -> SocketArg {
        let wild = arg.to_str().is_some_and(|s| s.contains(['*', '?']));
        if wild {
            SocketArg::Pattern(arg)
        } else {
            SocketArg::Path(arg)
        }
    }

    /// Whether this is a pattern.
    pub fn is_pattern(&self) -> bool {
        matches!(self, SocketArg::Pattern(_))
    }

    /// The argument as given.
    pub fn as_path(&self) -> &Path {
        match self {
            SocketArg::Path(path) | SocketArg::Pattern(path) => path,
        }
    }
}

/// Every socket the arguments name now, in argument order, each pattern's matches
/// sorted, none twice. Only Unix sockets match a pattern: a pattern that matches nothing
/// (yet) names none, and an unreadable folder is passed over.
pub fn expand(args: &[SocketArg]) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for arg in args {
        let matches = match arg {
            SocketArg::Path(path) => vec![path.clone()],
            SocketArg::Pattern(pattern) => matching(pattern),
        };
        for path in matches {
            if !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}

/// The sockets that match `pattern`, sorted.
fn matching(pattern: &Path) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::new()];
    let components: Vec<Component> = pattern.components().collect();
    for (i, component) in components.iter().enumerate() {
        let last = i + 1 == components.len();
        let Component::Normal(part) = component else {
            paths.iter_mut().for_each(|p| p.push(component));
            continue;
        };
        let part = part.to_string_lossy();
        if !part.contains(['*', '?']) {
            paths.iter_mut().for_each(|p| p.push(&*part));
            continue;
        }
        paths = paths
            .iter()
            .flat_map(|folder| entries(folder, &part, last))
            .collect();
    }
    paths.retain(|p| is_socket(p));
    paths.sort();
    paths
}

/// The entries of `folder` whose names match `pattern`: folders, unless `last`.
fn entries(folder: &Path, pattern: &str, last: bool) -> Vec<PathBuf> {
    let listed = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let Ok(read) = fs::read_dir(listed) else {
        return Vec::new();
    };
    read.filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Like a shell: a wildcard does not match a hidden name.
            (pattern.starts_with('.') || !name.starts_with('.')) && wildcard(pattern, &name)
        })
        .map(|entry| folder.join(entry.file_name()))
        .filter(|path| last || path.is_dir())
        .collect()
}

fn is_socket(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and `?` one.
fn wildcard(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // The classic greedy match with one backtrack point: linear in practice.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn wildcards_match_as_in_a_shell() {
        assert!(wildcard("*.sock", "a.sock"));
        assert!(wildcard("*.sock", ".sock"));
        assert!(wildcard("r?", "r1"));
        assert!(!wildcard("r?", "r12"));
        assert!(wildcard("*a*b*", "xxaxxbxx"));
        assert!(!wildcard("*a*b", "xxbxxa"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("cors.sock", "cors.socks"));
    }

    #[test]
    fn a_path_without_wildcards_is_not_a_pattern() {
        assert!(!SocketArg::new("/run/cors.sock".into()).is_pattern());
        assert!(SocketArg::new("/run/*/cors.sock".into()).is_pattern());
        assert!(SocketArg::new("/run/r?.sock".into()).is_pattern());
    }

    #[test]
    fn a_pattern_names_the_sockets_that_match_now_sorted_and_only_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let mut listeners = Vec::new();
        for replica in ["r2", "r1", "r3"] {
            fs::create_dir(dir.path().join(replica)).unwrap();
            listeners.push(UnixListener::bind(dir.path().join(replica).join("cors.sock")).unwrap());
        }
        // Neither a regular file nor a hidden folder matches.
        fs::create_dir(dir.path().join("r4")).unwrap();
        fs::write(dir.path().join("r4/cors.sock"), "not a socket").unwrap();
        fs::create_dir(dir.path().join(".r5")).unwrap();
        listeners.push(UnixListener::bind(dir.path().join(".r5/cors.sock")).unwrap());
        let pattern = SocketArg::new(dir.path().join("r*/cors.sock"));
        let found = expand(std::slice::from_ref(&pattern));
        let names: Vec<PathBuf> = ["r1", "r2", "r3"]
            .iter()
            .map(|r| dir.path().join(r).join("cors.sock"))
            .collect();
        assert_eq!(found, names);
        // A replica started later is found by the next expansion.
        fs::create_dir(dir.path().join("r0")).unwrap();
        listeners.push(UnixListener::bind(dir.path().join("r0/cors.sock")).unwrap());
        assert_eq!(expand(&[pattern]).len(), 4);
    }

    #[test]
    fn paths_come_in_argument_order_and_never_twice() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sock");
        let b = dir.path().join("b.sock");
        let _la = UnixListener::bind(&a).unwrap();
        let _lb = UnixListener::bind(&b).unwrap();
        let args = [
            SocketArg::new(b.clone()),
            SocketArg::new(dir.path().join("*.sock")),
            SocketArg::new(dir.path().join("missing.sock")),
        ];
        assert_eq!(expand(&args), [b, a, dir.path().join("missing.sock")]);
    }

    #[test]
    fn a_pattern_in_a_missing_folder_names_nothing() {
        let args = [SocketArg::new("/nonexistent-mcp-cors/*/cors.sock".into())];
        assert!(expand(&args).is_empty());
    }
}
