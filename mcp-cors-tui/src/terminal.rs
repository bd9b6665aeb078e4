//! Entering and leaving the terminal's full-screen mode. The terminal is restored however
//! the UI ends: normally, through an error (the guard's `Drop`), or by a panic (a hook that
//! restores before the panic message is printed, so the message is readable).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// The terminal the UI draws on.
pub type Tui = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped.
#[derive(Debug)]
pub struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore();
    }
}

/// Switches to raw mode and the alternate screen; the returned guard switches back.
pub fn enter() -> io::Result<(Tui, Restore)> {
    install_panic_hook();
    enable_raw_mode()?;
    // From here on the guard undoes whatever part succeeded.
    let guard = Restore;
    execute!(io::stdout(), EnterAlternateScreen)?;
    let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    Ok((terminal, guard))
}

/// Leaves the alternate screen and raw mode, shows the cursor. Safe to call twice.
fn restore() {
    // Errors are ignored: this runs on the way out (or in a panic) and there is nothing
    // better to do than try every step.
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
}

/// Set once a panic (on any thread: the connection task runs on a runtime worker) has
/// restored the terminal.
static RESTORED_BY_PANIC: AtomicBool = AtomicBool::new(false);

/// Whether a panic has restored the terminal, so the UI must not draw any more.
pub fn restored_by_panic() -> bool {
    RESTORED_BY_PANIC.load(Ordering::SeqCst)
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        RESTORED_BY_PANIC.store(true, Ordering::SeqCst);
        restore();
        previous(info);
    }));
}
