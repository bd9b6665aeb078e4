//! Rendering: a pure function of the model ([`App`]) onto a frame, one module per panel.
//! Times are rendered from event times and `App::now_ms`, never from the wall clock.

mod banner;
mod denied;
mod dialog;
mod events;
mod fit;
mod footer;
mod header;
mod help;
mod hosts;
mod policy;
mod rate;
mod refused;
mod replicas;
pub mod styles;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};

use crate::state::App;

/// Draws the whole screen: the header (with the sparklines), a fleet's replicas, the event
/// tail across the whole width (its rows are the widest: time, replica, verdict, route,
/// client, method, origin, path, reason), and under it the denied panels and the policy
/// side by side.
pub fn render(frame: &mut Frame, app: &App) {
    let [header, banner, fleet, tail, panels, footer] = Layout::vertical([
        Constraint::Length(header::HEIGHT),
        Constraint::Length(banner::height(app)),
        Constraint::Length(replicas::height(app)),
        Constraint::Min(5),
        Constraint::Percentage(35),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::render(frame, header, app);
    banner::render(frame, banner, app);
    replicas::render(frame, fleet, app);
    events::render(frame, tail, app);
    if app.shows_hosts() {
        // Refused hosts beside the refused origins, once there are any.
        let [denied, hosts, policy] = Layout::horizontal([
            Constraint::Percentage(40),
            Constraint::Percentage(30),
            Constraint::Percentage(30),
        ])
        .areas(panels);
        denied::render(frame, denied, app);
        hosts::render(frame, hosts, app);
        policy::render(frame, policy, app);
    } else {
        let [denied, policy] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(panels);
        denied::render(frame, denied, app);
        policy::render(frame, policy, app);
    }
    footer::render(frame, footer, app);
    if let Some(open) = &app.dialog {
        dialog::render(frame, open);
    }
    if app.help {
        help::render(frame);
    }
}

/// A rectangle of `width` × `height` centred in `area` (shrunk to fit).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    rect
}

#[cfg(test)]
mod tests;
