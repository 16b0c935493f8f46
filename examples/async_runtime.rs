//! A tokio program: several agent tasks append steps, phases and compactions
//! concurrently (durable appends share fsyncs through group commit), while a
//! supervisor task subscribed to every run prints what it sees, live.
//!
//! Run with `cargo run --example async_runtime`.

use std::time::Duration;

use runjournal::{CompactionInfo, CompactionSource, Event, Journal, Message, Options, Outcome, Role, RunKey, RunMeta};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), runjournal::Error> {
    let dir = std::env::temp_dir().join(format!("runjournal-async-example-{}", std::process::id()));
    let journal = Journal::open(&dir, Options::default())?;

    let mut live = journal.subscribe_all_async(4096)?;
    let supervisor = tokio::spawn(async move {
        let mut seen = 0;
        while let Some(item) = live.recv().await {
            match item {
                Ok(envelope) => {
                    seen += 1;
                    let agent = &envelope.run.agent;
                    match &envelope.event {
                        Event::PhaseStarted { index, name } => println!("[{agent}] phase {index} {name} started"),
                        Event::CompactionDone { .. } => println!("[{agent}] compacted its context"),
                        Event::RunCompleted { output } => {
                            println!("[{agent}] completed: {}", output.as_deref().unwrap_or(""));
                        }
                        _ => {}
                    }
                }
                Err(error) => {
                    println!("supervisor: {error}");
                    break;
                }
            }
        }
        seen
    });

    let agents: Vec<_> = (0..4)
        .map(|agent| {
            let journal = journal.clone();
            tokio::spawn(async move {
                let key = RunKey::new("summarise-repo", 0, format!("worker-{agent}"))?;
                let run = journal.begin_async(key, RunMeta::default()).await?;
                for phase in 0..2u32 {
                    run.phase_started_async(phase, format!("part-{phase}")).await?;
                    for step in 0..5 {
                        let text = format!("worker {agent} phase {phase} step {step}");
                        run.step_async(vec![Message::new(Role::Assistant, text)]).await?;
                    }
                    run.compaction_started_async(CompactionSource::Structured, CompactionInfo::default())
                        .await?;
                    run.compaction_done_async(
                        CompactionSource::Structured,
                        CompactionInfo {
                            summary: Some(format!("worker {agent} finished part {phase}")),
                            ..CompactionInfo::default()
                        },
                    )
                    .await?;
                    run.phase_completed_async(phase, format!("part-{phase}"), "ok").await?;
                }
                run.finish_async(Outcome::Success {
                    output: Some(format!("summary by worker {agent}")),
                })
                .await
                .map_err(runjournal::Error::from)?;
                Ok::<(), runjournal::Error>(())
            })
        })
        .collect();
    for agent in agents {
        agent.await.expect("agent task panicked")?;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(journal);
    let seen = supervisor.await.expect("supervisor task panicked");
    println!("supervisor saw {seen} events live");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
