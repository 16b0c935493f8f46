//! `rebuild-snapshots RUN`: replaces a run's snapshots with one rebuilt from
//! its verified log (the fix a corrupt snapshot's error names).

use std::io::Write;
use std::process::ExitCode;

use super::verify::VerifyArgs;
use super::KeyJson;
use crate::context::Context;

/// `rebuild-snapshots`.
pub fn run(cx: &mut Context, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let journal = cx.open_existing()?;
    let key = cx.resolve(&journal, &args.run)?.key;
    journal.rebuild_snapshots(&key)?;
    if cx.json {
        writeln!(cx.out, "{}", serde_json::json!({"rebuilt": KeyJson::of(&key)}))?;
    } else {
        writeln!(cx.out, "rebuilt the snapshot of {key} from its verified log")?;
    }
    Ok(ExitCode::SUCCESS)
}
