//! The page's static files, embedded in the binary (no build step): plain
//! HTML, CSS and JavaScript under `crates/cli/ui/`.

/// One embedded file.
pub struct Asset {
    /// Its `content-type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

const INDEX: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_str!("../../ui/index.html"),
};
const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../../ui/app.js"),
};
const STYLE: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_str!("../../ui/style.css"),
};

/// The asset served at `path`, if any (`/` is the page).
pub fn find(path: &str) -> Option<&'static Asset> {
    match path {
        "/" | "/index.html" => Some(&INDEX),
        "/app.js" => Some(&SCRIPT),
        "/style.css" => Some(&STYLE),
        _ => None,
    }
}
