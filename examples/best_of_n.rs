//! Best-of-N from a shared checkpoint: a parent run reaches a checkpoint,
//! fans out three attempts (fresh episodes forked at the same seq, sharing
//! the parent's prefix without copying it), one attempt wins, the others are
//! purged, and the lineage is printed.
//!
//! Run with `cargo run --example best_of_n`.

use runjournal::{Journal, Message, Options, Outcome, PurgePolicy, Role, RunFilter, RunKey, RunMeta};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("runjournal-best-of-n-{}", std::process::id()));
    let journal = Journal::open(&dir, Options::default())?;

    let parent_key = RunKey::new("optimise-query", 0, "solver")?;
    let parent = journal.begin(parent_key.clone(), RunMeta::default())?;
    parent.phase_started(0, "analyse")?;
    parent.step(vec![Message::new(
        Role::Assistant,
        "the query scans the whole orders table",
    )])?;
    let checkpoint = parent.phase_completed(0, "analyse", "needs an index on orders.customer_id")?;
    println!("parent {parent_key} reached its checkpoint at seq {checkpoint}");

    let attempts = journal.fanout(&parent_key, checkpoint, 3)?;
    let scores = [0.61, 0.93, 0.47];
    for (attempt, score) in attempts.iter().zip(scores) {
        attempt.step(vec![Message::new(
            Role::Assistant,
            format!("trying a plan scoring {score}"),
        )])?;
    }
    let winner = attempts[1].key().clone();
    let mut losers = Vec::new();
    for (attempt, score) in attempts.into_iter().zip(scores) {
        let key = attempt.key().clone();
        attempt.finish(Outcome::Success {
            output: Some(format!("score {score}")),
        })?;
        if key != winner {
            losers.push(key);
        }
    }
    parent.finish(Outcome::Success {
        output: Some(format!("best attempt: episode {}", winner.episode)),
    })?;

    let report = journal.purge(
        &PurgePolicy {
            explicit: losers,
            ..PurgePolicy::default()
        },
        false,
    )?;
    for (key, events) in &report.purged {
        println!("purged {key} ({events} events of its own)");
    }
    println!("freed {} bytes", report.freed_bytes);

    println!("lineage:");
    for record in journal.runs(&RunFilter::default())? {
        let parent = journal.parent(&record.key)?;
        let children = journal.children(&record.key)?;
        println!(
            "  {} [{}] parent: {} children: {}",
            record.key,
            record.status,
            parent.map_or("-".to_string(), |parent| parent.to_string()),
            children.len()
        );
    }
    let history = journal.history(&winner)?;
    println!(
        "winner {winner} replays {} events ({} inherited from the parent)",
        history.len(),
        checkpoint + 1
    );
    journal.verify(&winner)?;
    drop(journal);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
