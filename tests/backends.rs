//! Every compiled backend computes the same network: weights saved on flex, loaded on each
//! other backend, give the same outputs within 1e-4.

use burn::prelude::*;
use burn::tensor::{Distribution, Tolerance};
use siamese::device::BackendKind;
use siamese::{Siamese, SiameseConfig};

fn agree_with_flex(config: SiameseConfig, batch: usize) {
    let flex = BackendKind::Flex
        .device()
        .expect("flex is the reference backend");
    flex.seed(7);
    let model = config.init(&flex).valid();
    let json = model.config.to_string();
    let bytes: Vec<u8> = model.clone().into_record().into_bytes().unwrap().to_vec();
    let [s, _] = model.input_shape();
    let left = Tensor::<4>::random([batch, 1, s, s], Distribution::Default, &flex);
    let right = Tensor::<4>::random([batch, 1, s, s], Distribution::Default, &flex);
    let logits = model.forward(left.clone(), right.clone()).into_data();
    let embeddings = model.embed(left.clone()).into_data();

    let others: Vec<BackendKind> = BackendKind::compiled()
        .into_iter()
        .filter(|b| *b != BackendKind::Flex)
        .collect();
    if others.is_empty() {
        println!("only flex is compiled: nothing to compare (enable ndarray or wgpu)");
    }
    for backend in others {
        let device = backend.device().unwrap();
        let other = Siamese::from_parts(&json, bytes.clone(), &device)
            .unwrap()
            .valid();
        let to = |t: &Tensor<4>| Tensor::<4>::from_data(t.to_data(), &device);
        other
            .forward(to(&left), to(&right))
            .into_data()
            .assert_approx_eq::<f32>(&logits, Tolerance::absolute(1e-4));
        other
            .embed(to(&left))
            .into_data()
            .assert_approx_eq::<f32>(&embeddings, Tolerance::absolute(1e-4));
        println!("{backend} agrees with flex within 1e-4");
    }
}

#[test]
fn compact_agrees_across_backends() {
    agree_with_flex(SiameseConfig::compact(), 4);
}

#[test]
fn koch_agrees_across_backends() {
    agree_with_flex(SiameseConfig::koch(), 2);
}
