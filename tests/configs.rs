//! The network files under `configs/` load, validate and have the sizes
//! `configs/README.md` gives.

use burn::module::Module;
use siamese::SiameseConfig;

fn load(name: &str) -> SiameseConfig {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name);
    SiameseConfig::read(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn json(config: &SiameseConfig) -> serde_json::Value {
    serde_json::to_value(config).unwrap()
}

/// Burn counts the batch-norm running statistics (2 per channel) as parameters too.
fn trained_params(config: &SiameseConfig) -> usize {
    let device = siamese::device::default_device().unwrap();
    let statistics: usize = config.encoder.blocks.iter().map(|b| 2 * b.channels).sum();
    config.init(&device).num_params() - statistics
}

#[test]
fn compact_variants_have_the_documented_sizes() {
    let wide = load("compact-wide.json");
    let channels: Vec<usize> = wide.encoder.blocks.iter().map(|b| b.channels).collect();
    assert_eq!(channels, [48, 96, 96, 192]);
    assert_eq!(wide.encoder.embedding, Some(576));
    assert_eq!(trained_params(&wide), 1_288_513);

    let large = load("compact-105.json");
    assert_eq!(large.encoder.input_size, 105);
    assert_eq!(large.encoder.flattened_size(), 6 * 6 * 128);
    assert_eq!(trained_params(&large), 1_900_417);

    // The reference they are compared with.
    assert_eq!(trained_params(&SiameseConfig::compact()), 573_313);
    // Apart from what they change, both are the compact network.
    let mut unchanged = wide.clone();
    unchanged.encoder.blocks = SiameseConfig::compact().encoder.blocks;
    unchanged.encoder.embedding = Some(384);
    assert_eq!(json(&unchanged), json(&SiameseConfig::compact()));
    let mut unchanged = large.clone();
    unchanged.encoder.input_size = 52;
    assert_eq!(json(&unchanged), json(&SiameseConfig::compact()));
}
