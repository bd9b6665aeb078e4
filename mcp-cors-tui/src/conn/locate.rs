//! Finding the admin socket from a config file, as the server derives it, also while the
//! file is broken: an operator opens the UI precisely when an edit went wrong, and the
//! server keeps serving (and listening on its socket) with the last good policy.

use std::path::{Path, PathBuf};

use mcp_cors::{AdminSettings, Policy, PolicyError};

/// The `[admin]` settings of `config`: from the loaded policy when the file is valid;
/// otherwise read leniently from the `[admin]` table alone, so that an error elsewhere
/// in the file does not hide a custom `socket`; the defaults when even that fails.
pub fn admin_settings(config: &Path) -> AdminSettings {
    match Policy::from_file(config) {
        Ok(policy) => policy.settings().admin.clone(),
        // Not a file to read (a FIFO would block us, a device never ends): the defaults.
        Err(PolicyError::NotAFile { .. } | PolicyError::TooLarge { .. }) => {
            AdminSettings::default()
        }
        Err(_) => std::fs::read_to_string(config)
            .ok()
            .and_then(|text| lenient(&text))
            .unwrap_or_default(),
    }
}

/// The `[admin]` settings of a policy's text (a value kept in etcd), read as leniently as
/// a broken file's: the defaults when even the `[admin]` table cannot be read.
pub fn lenient_admin(text: &str) -> AdminSettings {
    match Policy::from_toml_str(text) {
        Ok(policy) => policy.settings().admin.clone(),
        Err(_) => lenient(text).unwrap_or_default(),
    }
}

/// The `[admin]` table of `text`, whatever else the file gets wrong: the whole file when
/// it is valid TOML (a validation error elsewhere), else the table's own lines.
fn lenient(text: &str) -> Option<AdminSettings> {
    let table = match text.parse::<toml::Table>() {
        Ok(mut doc) => match doc.remove("admin")? {
            toml::Value::Table(table) => table,
            _ => return None,
        },
        Err(_) => admin_section(text).parse::<toml::Table>().ok()?,
    };
    // Key by key, so that a mistake in one key (or an unknown key) keeps the others.
    let socket = table
        .get("socket")
        .and_then(|v| v.as_str())
        .map(PathBuf::from);
    let audit_log = table
        .get("audit_log")
        .and_then(|v| v.as_str())
        .map(PathBuf::from);
    let enabled = table.get("enabled").and_then(toml::Value::as_bool);
    Some(AdminSettings {
        enabled: enabled.unwrap_or(AdminSettings::default().enabled),
        socket,
        audit_log,
    })
}

/// The lines of the `[admin]` table: after its header, up to the next table header.
fn admin_section(text: &str) -> String {
    let mut lines = text.lines().skip_while(|line| !is_admin_header(line));
    lines.next();
    lines
        .take_while(|line| !line.trim_start().starts_with('['))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_admin_header(line: &str) -> bool {
    let code = line.split('#').next().unwrap_or_default();
    code.trim() == "[admin]"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(text: &str) -> Option<PathBuf> {
        lenient(text).and_then(|a| a.socket)
    }

    #[test]
    fn a_validation_error_elsewhere_keeps_the_admin_table() {
        let text = "allowed_origins = [\"https://a.example/x\"]\n[admin]\nsocket = \"ops.sock\"\n";
        assert!(Policy::from_toml_str(text).is_err());
        assert_eq!(socket(text), Some(PathBuf::from("ops.sock")));
    }

    #[test]
    fn a_syntax_error_elsewhere_keeps_the_admin_table() {
        let text = "allowed_origins = [\"https://a.example\"\nmax_age = \n\n[admin] # ops\nsocket = \"/run/ops.sock\"  # here\n\n[other]\nsocket = \"no\"\n";
        assert!(text.parse::<toml::Table>().is_err());
        assert_eq!(socket(text), Some(PathBuf::from("/run/ops.sock")));
    }

    #[test]
    fn an_unknown_admin_key_keeps_the_socket() {
        let text = "[admin]\nsokcet = 1\nsocket = \"ops.sock\"\n";
        assert_eq!(socket(text), Some(PathBuf::from("ops.sock")));
    }

    #[test]
    fn no_admin_table_is_the_default() {
        assert_eq!(socket("max_age = \n"), None);
        assert_eq!(lenient("max_age = 1\n"), None);
    }

    #[test]
    fn a_broken_file_with_a_custom_socket_is_found_through_the_admin_table() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cors.toml");
        std::fs::write(
            &config,
            "mode = \"sometimes\"\n[admin]\nsocket = \"ops.sock\"\n",
        )
        .unwrap();
        let admin = admin_settings(&config);
        assert_eq!(
            mcp_cors::admin_socket_path(&config, &admin),
            dir.path().join("ops.sock")
        );
    }
}
