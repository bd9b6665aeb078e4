//! The kinds of refusal: a small closed set that metrics label and logs name, where the
//! full reason (with a method, header or host in it) would make them unbounded.

/// What a refusal was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalKind {
    /// The `Origin` is not allowed (`null` included).
    Origin,
    /// The `Host` is missing or not allowed (DNS rebinding).
    Host,
    /// A preflight's method is not allowed.
    Method,
    /// A preflight's header is not allowed.
    Header,
    /// A preflight asked for Private Network Access, which is off.
    PrivateNetwork,
    /// An `Origin` or `Host` that is not well formed, or repeated.
    Malformed,
    /// No policy has ever loaded: everything cross-origin is refused.
    NoPolicy,
}

impl RefusalKind {
    /// Every kind, in [`RefusalKind::index`] order.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const ALL: [RefusalKind; 7] = [
        RefusalKind::Origin,
        RefusalKind::Host,
        RefusalKind::Method,
        RefusalKind::Header,
        RefusalKind::PrivateNetwork,
        RefusalKind::Malformed,
        RefusalKind::NoPolicy,
    ];

    /// The label, as metrics and logs show it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            RefusalKind::Origin => "origin",
            RefusalKind::Host => "host",
            RefusalKind::Method => "method",
            RefusalKind::Header => "header",
            RefusalKind::PrivateNetwork => "private-network",
            RefusalKind::Malformed => "malformed",
            RefusalKind::NoPolicy => "no-policy",
        }
    }

    /// Its place in [`RefusalKind::ALL`].
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}
