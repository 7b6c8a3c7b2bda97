//! Whole-replay benchmark: `assets/scenarios/deploy.chainview` from a parsed
//! script to the last step, embedded broker start and shutdown included —
//! what `chainview --script` does, minus printing.
//!
//!     cargo bench --bench replay
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};

use chainview::scenario::{parse, replay::Replay};
use chainview::session::Settings;

fn deploy(c: &mut Criterion) {
    let text = include_str!("../assets/scenarios/deploy.chainview");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("replay");
    group.sample_size(50);
    group.bench_function("deploy.chainview (embedded broker start included)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let script = parse("deploy.chainview", text).expect("bundled script parses");
                let mut replay = Replay::start(script, &Settings::default())
                    .await
                    .expect("embedded broker starts");
                while let Some(report) = replay.next().await {
                    std::hint::black_box(&report);
                }
                let summary = replay.finish().await;
                assert_eq!(summary.exit_code(), 0);
            })
        })
    });
    group.finish();
}

criterion_group!(benches, deploy);
criterion_main!(benches);
