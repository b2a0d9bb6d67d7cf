//! A leasing process for the queue's multi-process tests and for trying the queue by hand.
//!
//! ```sh
//! leaser URL drain [LEASE_MS]   # lease and ack until the queue is empty; prints how many it did
//! leaser URL hold [LEASE_MS]    # lease one task, print its id, then hold it until killed
//! ```

use std::time::Duration;

use agentfleet_queue::{LeaseFilter, Queue};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [url, mode, rest @ ..] = arguments.as_slice() else {
        return Err("usage: leaser URL drain|hold [LEASE_MS]".into());
    };
    let lease = Duration::from_millis(rest.first().map_or(Ok(30_000), |ms| ms.parse())?);
    let queue = Queue::connect(url).await?;
    let worker = format!("leaser-{}", std::process::id());
    match mode.as_str() {
        "drain" => {
            let mut done = 0u64;
            let mut empty = 0;
            while empty < 3 {
                let leases = queue
                    .lease(&worker, lease, 8, &LeaseFilter::default())
                    .await?;
                if leases.is_empty() {
                    empty += 1;
                    queue.wait_for_work(Duration::from_millis(50)).await;
                    continue;
                }
                empty = 0;
                for held in &leases {
                    queue.ack(held, &worker).await?;
                    done += 1;
                }
            }
            println!("{done}");
        }
        "hold" => {
            let leases = queue
                .lease(&worker, lease, 1, &LeaseFilter::default())
                .await?;
            let held = leases.first().ok_or("nothing to lease")?;
            println!("{}", held.record.id);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}
