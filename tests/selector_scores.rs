//! The response scores behind IFD, Superfiltering, GRAPE and RSR
//! ([`morsd::student::score::response_stats`]) against values computed here, independently, from
//! the Hugging Face reference logits of the family fixtures (`tests/fixtures/families/`): per
//! target token, NLL = logsumexp(logits) − logit(target) and rank = 1 + #{logits > logit(target)}
//! clipped at 100, then their means.

use morsd::select::scores::RANK_CLIP;
use morsd::student::load_checkpoint;
use morsd::student::score::response_stats;
use morsd::student::train::TrainExample;
use serde_json::Value;
use std::path::PathBuf;

fn reference(family: &str) -> (PathBuf, Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/families")
        .join(family);
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    (dir, serde_json::from_str(&text).unwrap())
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn logits(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// (mean NLL, mean clipped rank) of `targets[k]` under `rows[k]`, computed here.
fn expected(rows: &[Vec<f64>], targets: &[u32]) -> (f64, f64) {
    let (mut nll, mut rank) = (0.0, 0.0);
    for (row, &t) in rows.iter().zip(targets) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        let x = row[t as usize];
        nll += lse - x;
        rank += (1 + row.iter().filter(|&&y| y > x).count()).min(RANK_CLIP) as f64;
    }
    let n = targets.len() as f64;
    (nll / n, rank / n)
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want}");
}

/// A decoder family: each fixture prompt `p` (its logits are the reference's) scored as a
/// response alone (`[] → p`, tokens 1.. scored) and after a two-token question (`p[..2] → p[2..]`).
fn check_decoder(name: &str, len: usize) {
    let (dir, r) = reference(name);
    let device = morsd::device_from_env().unwrap();
    let p = load_checkpoint(&dir, len, &device).unwrap();
    let prompts: Vec<Vec<u32>> = r["prompts"].as_array().unwrap().iter().map(ids).collect();
    let mut examples = Vec::new();
    for p in &prompts {
        examples.push(TrainExample {
            prompt: vec![],
            target: p.clone(),
            ..Default::default()
        });
        examples.push(TrainExample {
            prompt: p[..2].to_vec(),
            target: p[2..].to_vec(),
            ..Default::default()
        });
    }
    // Batch size 3 mixes lengths and both kinds of rows in one batch.
    let got = response_stats(&p.model, p.tok.pad, &examples, 3, RANK_CLIP, &device);
    for (i, pr) in prompts.iter().enumerate() {
        let l = logits(&r["logits"][i]);
        let t = pr.len();
        // Alone: positions 0..t−1 predict tokens 1..t.
        let (nll, rank) = expected(&l[..t - 1], &pr[1..]);
        let a = got[2 * i];
        assert_eq!(a.tokens, t - 1, "{name} prompt {i} alone");
        close(
            &format!("{name} prompt {i} alone: NLL"),
            a.mean_nll,
            nll,
            1e-3,
        );
        close(
            &format!("{name} prompt {i} alone: rank"),
            a.mean_rank,
            rank,
            1e-9,
        );
        // After the question: positions 1..t−1 predict tokens 2..t.
        let (nll, rank) = expected(&l[1..t - 1], &pr[2..]);
        let w = got[2 * i + 1];
        assert_eq!(w.tokens, t - 2, "{name} prompt {i} with question");
        close(
            &format!("{name} prompt {i} given q: NLL"),
            w.mean_nll,
            nll,
            1e-3,
        );
        close(
            &format!("{name} prompt {i} given q: rank"),
            w.mean_rank,
            rank,
            1e-9,
        );
    }
}

#[test]
fn response_scores_match_llama_reference_logits() {
    check_decoder("llama", 128);
}

#[test]
fn response_scores_match_gpt2_reference_logits() {
    check_decoder("gpt2", 64);
}

#[test]
fn response_scores_match_t5_reference_logits() {
    // The encoder reads the prompt; the decoder reads `start ++ target` and predicts the target,
    // so the reference decoder input `start ++ d` gives the logits of target `d`.
    let (dir, r) = reference("t5");
    let device = morsd::device_from_env().unwrap();
    let p = load_checkpoint(&dir, 128, &device).unwrap();
    let prompts: Vec<Vec<u32>> = r["prompts"].as_array().unwrap().iter().map(ids).collect();
    let decs: Vec<Vec<u32>> = r["decoder_inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    let examples: Vec<TrainExample> = prompts
        .iter()
        .zip(&decs)
        .map(|(p, d)| TrainExample {
            prompt: p.clone(),
            target: d[1..].to_vec(),
            ..Default::default()
        })
        .collect();
    let got = response_stats(&p.model, p.tok.pad, &examples, 2, RANK_CLIP, &device);
    for (i, d) in decs.iter().enumerate() {
        let l = logits(&r["logits"][i]);
        let (nll, rank) = expected(&l[..d.len() - 1], &d[1..]);
        assert_eq!(got[i].tokens, d.len() - 1);
        close(&format!("t5 row {i}: NLL"), got[i].mean_nll, nll, 1e-3);
        close(&format!("t5 row {i}: rank"), got[i].mean_rank, rank, 1e-9);
    }
}

#[test]
fn ranks_are_clipped() {
    // With a clip of 1 every token counts rank 1, whatever the model says.
    let (dir, r) = reference("gpt2");
    let device = morsd::device_from_env().unwrap();
    let p = load_checkpoint(&dir, 64, &device).unwrap();
    let pr = ids(&r["prompts"][0]);
    let ex = [TrainExample {
        prompt: vec![],
        target: pr,
        ..Default::default()
    }];
    let got = response_stats(&p.model, p.tok.pad, &ex, 1, 1, &device);
    assert_eq!(got[0].mean_rank, 1.0);
    let got = response_stats(&p.model, p.tok.pad, &ex, 1, RANK_CLIP, &device);
    assert!(
        got[0].mean_rank > 1.0,
        "the tiny random model ranks some token below the first"
    );
}
