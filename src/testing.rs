//! Test support: run one test body on every enabled device.

/// Makes one `#[test]` per compiled backend from each body:
/// `fn name(device) { ... }` becomes `name::flex`, `name::ndarray` and `name::wgpu`.
///
/// The wgpu test fails (with the reason) when the build has the `wgpu` feature but the
/// machine has no adapter: a silently skipped GPU test would hide a broken setup.
#[doc(hidden)]
#[macro_export]
macro_rules! device_tests {
    ($(fn $name:ident($device:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[allow(unused)]
                fn run($device: ::burn::tensor::Device) $body

                #[cfg(feature = "flex")]
                #[test]
                fn flex() {
                    run($crate::device::BackendKind::Flex.device().unwrap());
                }

                #[cfg(feature = "ndarray")]
                #[test]
                fn ndarray() {
                    run($crate::device::BackendKind::Ndarray.device().unwrap());
                }

                #[cfg(feature = "wgpu")]
                #[test]
                fn wgpu() {
                    run($crate::device::BackendKind::Wgpu.device().unwrap());
                }
            }
        )*
    };
}

/// A small network of every kind of layer the presets use (conv, batch norm with its
/// running statistics, fully connected, head): 8 × 8 input, 3-d embedding.
#[cfg(test)]
pub(crate) fn tiny_siamese() -> crate::SiameseConfig {
    use crate::model::{ConvBlockConfig, EncoderConfig};
    crate::SiameseConfig::new(
        EncoderConfig::new(8, vec![ConvBlockConfig::new(2, 3).with_padding(1)])
            .with_embedding(Some(3))
            .with_batch_norm(true),
    )
}

/// A mutation fuzzer for the crate's readers, on proptest (cargo-fuzz would need a
/// sanitizer build of Burn on nightly: not for CI's two cores).
///
/// [`fuzz`] feeds a reader mutations of valid inputs (`seeds`): bit flips, overwritten and
/// "interesting" bytes (0, 0xFF, `i32::MAX` ...), cuts, inserted bytes and dictionary words,
/// removed and repeated spans. The reader must not panic, and `check` (run on each input)
/// must hold. A failure is shrunk to a small list of mutations and printed.
///
/// `SIAMESE_FUZZ_SECONDS=600` runs each target for that long (in rounds of
/// `SIAMESE_FUZZ_CASES`, default 128, the whole run in CI); `SIAMESE_FUZZ_SEED` (a number,
/// default 0) picks the sequence of inputs. Each target prints its executions and how many
/// inputs were refused, with how many distinct messages.
#[cfg(test)]
pub(crate) mod fuzz {
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::time::{Duration, Instant};

    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

    /// One change to an input. Positions are taken modulo the input's length.
    #[derive(Clone, Debug)]
    pub(crate) enum Mutation {
        Flip { at: usize, bit: u8 },
        Set { at: usize, byte: u8 },
        Interesting { at: usize, value: &'static [u8] },
        Cut { at: usize },
        Insert { at: usize, bytes: Vec<u8> },
        Remove { at: usize, len: usize },
        Repeat { at: usize, len: usize },
    }

    const INTERESTING: &[&[u8]] = &[
        &[0],
        &[0xFF],
        &[0x7F],
        &[0x80],
        &[0, 0, 0, 0],
        &[0xFF, 0xFF, 0xFF, 0xFF],
        &[0xFF, 0xFF, 0xFF, 0x7F],
        &[0, 0, 0, 0x80],
        &[0x7F, 0xC0, 0, 0], // NaN, big-endian f32
        &[0, 0, 0xC0, 0x7F], // NaN, little-endian f32
        &[0, 0, 0x80, 0x7F], // +inf, little-endian f32
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    ];

    /// A position: mostly near the start, where headers are.
    fn position() -> impl Strategy<Value = usize> {
        prop_oneof![0..64usize, 0..1024usize, any::<usize>()]
    }

    fn mutation(dictionary: &'static [&'static [u8]]) -> impl Strategy<Value = Mutation> {
        let insert = prop_oneof![
            proptest::collection::vec(any::<u8>(), 1..16),
            proptest::sample::select(dictionary).prop_map(<[u8]>::to_vec),
        ];
        prop_oneof![
            3 => (position(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
            2 => (position(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
            2 => (position(), proptest::sample::select(INTERESTING))
                .prop_map(|(at, value)| Mutation::Interesting { at, value }),
            1 => position().prop_map(|at| Mutation::Cut { at }),
            2 => (position(), insert).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
            1 => (position(), 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
            1 => (position(), 1usize..64).prop_map(|(at, len)| Mutation::Repeat { at, len }),
        ]
    }

    /// `seed` with `mutations` applied in order.
    pub(crate) fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
        let mut bytes = seed.to_vec();
        for m in mutations {
            let n = bytes.len().max(1);
            match m {
                Mutation::Flip { at, bit } => {
                    if let Some(b) = bytes.get_mut(at % n) {
                        *b ^= 1 << bit;
                    }
                }
                Mutation::Set { at, byte } => {
                    if let Some(b) = bytes.get_mut(at % n) {
                        *b = *byte;
                    }
                }
                Mutation::Interesting { at, value } => {
                    let at = at % n;
                    for (i, v) in value.iter().enumerate() {
                        if let Some(b) = bytes.get_mut(at + i) {
                            *b = *v;
                        }
                    }
                }
                Mutation::Cut { at } => bytes.truncate(at % n),
                Mutation::Insert { at, bytes: new } => {
                    let at = at % (bytes.len() + 1);
                    bytes.splice(at..at, new.iter().copied());
                }
                Mutation::Remove { at, len } => {
                    let at = at % n;
                    let end = (at + len).min(bytes.len());
                    if at < end {
                        bytes.drain(at..end);
                    }
                }
                Mutation::Repeat { at, len } => {
                    let at = at % n;
                    let end = (at + len).min(bytes.len());
                    if at < end {
                        let span = bytes[at..end].to_vec();
                        bytes.splice(end..end, span);
                    }
                }
            }
        }
        bytes
    }

    /// What a fuzz run did.
    #[derive(Debug, Default)]
    pub(crate) struct Report {
        pub executions: u64,
        pub refused: u64,
        pub messages: HashSet<String>,
    }

    /// Feeds `read` mutations of `seeds` (one seed and 1 to 8 mutations a case) for the
    /// configured time or number of cases; `read` is told which seed was mutated. It returns `Ok(None)` when the input was
    /// read, `Ok(Some(message))` when it was refused with an error, and `Err` when an
    /// invariant broke (a wrong result): that, and any panic, fails the test.
    pub(crate) fn fuzz(
        name: &str,
        seeds: &[Vec<u8>],
        dictionary: &'static [&'static [u8]],
        read: impl Fn(usize, &[u8]) -> Result<Option<String>, String>,
    ) -> Report {
        let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
        let seconds = env("SIAMESE_FUZZ_SECONDS").map(Duration::from_secs);
        let cases = env("SIAMESE_FUZZ_CASES").unwrap_or(128) as u32;
        let fuzz_seed = env("SIAMESE_FUZZ_SEED").unwrap_or(0);
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        };
        // A runner runs its cases once: each round gets a runner of its own, seeded by
        // the round.
        let runner = |round: u64| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&fuzz_seed.to_le_bytes());
            seed[8..16].copy_from_slice(&round.to_le_bytes());
            TestRunner::new_with_rng(
                config.clone(),
                TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
            )
        };
        let strategy = (
            0..seeds.len(),
            proptest::collection::vec(mutation(dictionary), 1..8),
        );
        let report = RefCell::new(Report::default());
        let started = Instant::now();
        for round in 0.. {
            let result = runner(round).run(&strategy, |(which, mutations)| {
                let input = apply(&seeds[which], &mutations);
                let outcome = read(which, &input);
                let mut report = report.borrow_mut();
                report.executions += 1;
                match outcome {
                    Ok(None) => Ok(()),
                    Ok(Some(message)) => {
                        report.refused += 1;
                        // Messages differ in their numbers; their words tell the kind.
                        let kind: String = message
                            .chars()
                            .filter(|c| !c.is_ascii_digit())
                            .take(80)
                            .collect();
                        report.messages.insert(kind);
                        Ok(())
                    }
                    Err(broken) => Err(TestCaseError::fail(broken)),
                }
            });
            if let Err(e) = result {
                panic!("fuzz {name}: {e}");
            }
            if seconds.is_none_or(|limit| started.elapsed() >= limit) {
                break;
            }
        }
        let report = report.into_inner();
        eprintln!(
            "fuzz {name}: {} executions in {:.0} s; {} refused, {} distinct messages",
            report.executions,
            started.elapsed().as_secs_f64(),
            report.refused,
            report.messages.len()
        );
        report
    }

    #[test]
    fn mutations_apply_within_the_input() {
        let seed = b"abcdef".to_vec();
        let cut = apply(&seed, &[Mutation::Cut { at: 9 }]);
        assert_eq!(cut, b"abc");
        let repeated = apply(&seed, &[Mutation::Repeat { at: 1, len: 2 }]);
        assert_eq!(repeated, b"abcbcdef");
        let inserted = apply(
            &seed,
            &[Mutation::Insert {
                at: 6,
                bytes: b"!".to_vec(),
            }],
        );
        assert_eq!(inserted, b"abcdef!");
        assert_eq!(apply(b"", &[Mutation::Flip { at: 3, bit: 1 }]), b"");
    }
}
