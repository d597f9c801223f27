//! Tests of the pipeline against hand values and orders printed by TensorFlow 2.21
//! (`tf.data`, no global seed).

use super::*;
use crate::tensor::npy::write_npy;
use crate::{DType, PartialShape, Tensor};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn ints(ds: &Dataset) -> Vec<i64> {
    ds.iter()
        .map(|e| e.unwrap().tensor().unwrap().scalar_value::<i64>().unwrap())
        .collect()
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rustflow-data-{name}-{}", std::process::id()))
}

#[test]
fn seed_case_tuple_batches() {
    let x = Tensor::from([[1i32], [2], [3]]);
    let y = Tensor::from([[4i32], [5], [6]]);
    let ds = Dataset::from_tensor_slices((x, y)).unwrap().batch(2, false);
    assert_eq!(ds.cardinality(), Cardinality::Finite(2));
    let b = ds.collect().unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[0].pair().unwrap().0, &Tensor::from([[1i32], [2]]));
    assert_eq!(b[0].pair().unwrap().1, &Tensor::from([[4i32], [5]]));
    assert_eq!(b[1].pair().unwrap().0, &Tensor::from([[3i32]]));
    assert_eq!(b[1].pair().unwrap().1, &Tensor::from([[6i32]]));
    let dropped = Dataset::from_tensor_slices(Tensor::from([1i32, 2, 3])).unwrap();
    assert_eq!(dropped.batch(2, true).collect().unwrap().len(), 1);
}

#[test]
fn seed_case_shuffle_batch_prefetch() {
    for seed in [None, Some(3)] {
        let ds = Dataset::range(10)
            .shuffle(10, seed, true)
            .batch(2, false)
            .prefetch(2);
        let batches = ds.collect().unwrap();
        assert_eq!(batches.len(), 5);
        let mut all: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let t = b.tensor().unwrap();
                assert_eq!(t.shape(), &[2]);
                t.to_vec::<i64>().unwrap()
            })
            .collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}

#[test]
fn shuffle_orders_match_tensorflow() {
    // print([int(x) for x in tf.data.Dataset.range(10).shuffle(10, seed=42,
    //        reshuffle_each_iteration=False)]) twice, and so on, in TensorFlow 2.21.
    let fixed = Dataset::range(10).shuffle(10, Some(42), false);
    assert_eq!(ints(&fixed), [2, 0, 7, 8, 9, 3, 6, 4, 1, 5]);
    assert_eq!(ints(&fixed), [2, 0, 7, 8, 9, 3, 6, 4, 1, 5]);
    let small = Dataset::range(10).shuffle(4, Some(7), false);
    assert_eq!(ints(&small), [3, 4, 0, 5, 1, 8, 2, 7, 6, 9]);
    let reshuffled = Dataset::range(10).shuffle(10, Some(42), true);
    assert_eq!(ints(&reshuffled), [5, 9, 6, 4, 7, 1, 2, 8, 3, 0]);
    assert_eq!(ints(&reshuffled), [3, 7, 6, 5, 8, 4, 0, 1, 9, 2]);
    let repeated = Dataset::range(5).shuffle(3, Some(3), true).repeat(Some(2));
    assert_eq!(ints(&repeated), [0, 1, 2, 3, 4, 0, 3, 4, 2, 1]);
}

#[test]
fn shuffle_buffer_semantics() {
    // A buffer of 1 keeps the order; a buffer of k never moves an element more than k - 1
    // places earlier.
    assert_eq!(
        ints(&Dataset::range(6).shuffle(1, Some(1), true)),
        [0, 1, 2, 3, 4, 5]
    );
    let out = ints(&Dataset::range(100).shuffle(5, Some(9), true));
    for (pos, v) in out.iter().enumerate() {
        assert!(*v as usize <= pos + 4, "{v} at {pos}");
    }
    let mut sorted = out.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    let unseeded = Dataset::range(50).shuffle(50, None, false);
    assert_eq!(ints(&unseeded), ints(&unseeded));
}

#[test]
fn repeat_take_skip_and_cardinality() {
    let ds = Dataset::range(3).repeat(Some(2));
    assert_eq!(ints(&ds), [0, 1, 2, 0, 1, 2]);
    assert_eq!(ds.cardinality(), Cardinality::Finite(6));
    let forever = Dataset::range(3).repeat(None);
    assert_eq!(forever.cardinality(), Cardinality::Infinite);
    assert!(forever.collect().is_err());
    assert_eq!(ints(&forever.skip(2).take(5)), [2, 0, 1, 2, 0]);
    assert_eq!(forever.take(4).cardinality(), Cardinality::Finite(4));
    assert_eq!(ints(&Dataset::range(0).repeat(None)), Vec::<i64>::new());
    assert_eq!(ints(&Dataset::range_step(10, 0, -3)), [10, 7, 4, 1]);
    assert!(Dataset::range_step(0, 5, 0).collect().is_err());
    assert!(Dataset::range(4).batch(0, false).collect().is_err());
    assert_eq!(
        Dataset::range(5).batch(2, false).cardinality(),
        Cardinality::Finite(3)
    );
}

#[test]
fn map_filter_zip() {
    let double = |e: Element| -> crate::Result<Element> {
        Ok(Tensor::scalar(e.tensor()?.scalar_value::<i64>()? * 2).into())
    };
    let even =
        |e: &Element| -> crate::Result<bool> { Ok(e.tensor()?.scalar_value::<i64>()? % 4 == 0) };
    let ds = Dataset::range(6).map(double).filter(even);
    assert_eq!(ints(&ds), [0, 4, 8]);
    let z = Dataset::zip(vec![Dataset::range(3), Dataset::range(5).skip(1)]);
    assert_eq!(z.cardinality(), Cardinality::Finite(3));
    let pairs: Vec<(i64, i64)> = z
        .iter()
        .map(|e| {
            let e = e.unwrap();
            let (a, b) = e.pair().unwrap();
            (a.scalar_value().unwrap(), b.scalar_value().unwrap())
        })
        .collect();
    assert_eq!(pairs, [(0, 1), (1, 2), (2, 3)]);
    let failing = Dataset::range(3).map(|e| {
        if e.tensor()?.scalar_value::<i64>()? == 1 {
            crate::bail!("element 1 is bad");
        }
        Ok(e)
    });
    let items: Vec<_> = failing.iter().collect();
    assert_eq!(items.len(), 2, "the iteration ends after the error");
    assert!(items[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("element 1 is bad"));
}

#[test]
fn parallel_map_keeps_order_unless_told() {
    let slow_double = |e: Element| -> crate::Result<Element> {
        let v = e.tensor()?.scalar_value::<i64>()?;
        // Later elements finish sooner, so an unordered map would reorder them.
        std::thread::sleep(std::time::Duration::from_micros(
            ((50 - v % 50) * 20) as u64,
        ));
        Ok(Tensor::scalar(v * 2).into())
    };
    let ordered = Dataset::range(200).map_with(slow_double, MapOptions::parallel(4));
    assert_eq!(ints(&ordered), (0..200).map(|v| v * 2).collect::<Vec<_>>());
    let unordered =
        Dataset::range(200).map_with(slow_double, MapOptions::parallel(4).deterministic(false));
    let mut got = ints(&unordered);
    got.sort();
    assert_eq!(got, (0..200).map(|v| v * 2).collect::<Vec<_>>());
    let err = Dataset::range(10)
        .map_with(
            |_| -> crate::Result<Element> { crate::bail!("boom") },
            MapOptions::parallel(3),
        )
        .collect()
        .unwrap_err();
    assert!(err.to_string().contains("boom"));
    // Dropping a pass early stops its threads without blocking.
    let mut it = Dataset::range(1_000_000)
        .map_with(Ok, MapOptions::parallel(2))
        .prefetch(2)
        .iter();
    assert!(it.next().is_some());
    drop(it);
}

#[test]
fn cache_reads_the_input_once() {
    let passes = Arc::new(AtomicUsize::new(0));
    let p = passes.clone();
    let ds = Dataset::from_generator(move || {
        p.fetch_add(1, Ordering::SeqCst);
        (0..4i64).map(|v| Ok(Tensor::scalar(v).into()))
    })
    .cache();
    // A pass stopped early caches nothing.
    assert_eq!(ints(&ds.take(2)), [0, 1]);
    assert_eq!(ints(&ds), [0, 1, 2, 3]);
    assert_eq!(ints(&ds), [0, 1, 2, 3]);
    assert_eq!(ints(&ds.repeat(Some(2))).len(), 8);
    assert_eq!(passes.load(Ordering::SeqCst), 2);
}

#[test]
fn interleave_in_tensorflow_order() {
    // The example of `tf.data.Dataset.interleave`'s documentation.
    let ds = Dataset::range_step(1, 6, 1).interleave(
        |e| Ok(Dataset::from_tensors(e).repeat(Some(6))),
        2,
        4,
    );
    assert_eq!(
        ints(&ds),
        [
            1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 3, 3, 4, 4, 5, 5, 5, 5, 5,
            5
        ]
    );
    let flat = Dataset::range(3).interleave(|e| Ok(Dataset::from_tensors(e).repeat(Some(2))), 1, 1);
    assert_eq!(ints(&flat), [0, 0, 1, 1, 2, 2]);
}

#[test]
fn padded_batch_pads_to_the_longest_or_given_shape() {
    let ds = Dataset::range_step(1, 4, 1).map(|e| {
        let n = e.tensor()?.scalar_value::<i64>()? as usize;
        Ok(Tensor::vector(vec![n as i32; n]).into())
    });
    let b = ds.padded_batch(2, false).collect().unwrap();
    assert_eq!(b[0].tensor().unwrap(), &Tensor::from([[1i32, 0], [2, 2]]));
    assert_eq!(b[1].tensor().unwrap(), &Tensor::from([[3i32, 3, 3]]));
    let padding = Padding {
        shapes: vec![vec![Some(4)]],
        value: -1.0,
    };
    let b = ds.padded_batch_with(3, false, padding).collect().unwrap();
    assert_eq!(
        b[0].tensor().unwrap(),
        &Tensor::from([[1i32, -1, -1, -1], [2, 2, -1, -1], [3, 3, 3, -1]])
    );
    assert!(
        ds.batch(2, false).collect().is_err(),
        "batch needs equal shapes"
    );
}

#[test]
fn dict_elements_and_structure_errors() {
    let e: Element = [
        ("a", Tensor::from([1f32, 2., 3.])),
        ("b", Tensor::from([[1i64, 1], [2, 2], [3, 3]])),
    ]
    .into();
    let ds = Dataset::from_tensor_slices(e).unwrap().batch(2, false);
    let first = ds.iter().next().unwrap().unwrap();
    assert_eq!(
        first.get("a").unwrap().tensor().unwrap(),
        &Tensor::from([1f32, 2.])
    );
    assert_eq!(
        first.get("b").unwrap().tensor().unwrap(),
        &Tensor::from([[1i64, 1], [2, 2]])
    );
    assert!(first.get("c").is_err());
    let bad = Dataset::from_tensor_slices((Tensor::from([1i32, 2]), Tensor::from([1i32])));
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("same first dimension"));
    assert!(Dataset::from_tensor_slices(Tensor::scalar(1i32)).is_err());
    let mixed = Dataset::from_generator(|| {
        vec![
            Ok(Tensor::scalar(1i32).into()),
            Ok((Tensor::scalar(1i32), Tensor::scalar(2i32)).into()),
        ]
    });
    let err = mixed.batch(2, false).collect().unwrap_err().to_string();
    assert!(err.contains("different structures"), "{err}");
}

#[test]
fn dataloader_batches_shuffles_and_samples() {
    let x = Tensor::new(&[7, 2], (0..14).map(|v| v as f32).collect()).unwrap();
    let y = Tensor::vector((0..7).collect::<Vec<i32>>());
    let plain = DataLoader::new((x.clone(), y.clone()), 3).unwrap();
    assert_eq!(plain.len(), 3);
    let b: Vec<Element> = plain.iter().collect::<crate::Result<_>>().unwrap();
    assert_eq!(b[2].pair().unwrap().0, &Tensor::from([[12f32, 13.]]));
    assert_eq!(plain.clone().drop_last(true).iter().count(), 2);
    let sampled = DataLoader::new((x.clone(), y.clone()), 4)
        .unwrap()
        .sampler(|epoch| {
            if epoch == 0 {
                vec![6, 5, 4, 3, 2, 1, 0]
            } else {
                vec![1, 1]
            }
        })
        .num_workers(2);
    let e0: Vec<i32> = sampled
        .iter()
        .flat_map(|b| b.unwrap().pair().unwrap().1.to_vec::<i32>().unwrap())
        .collect();
    assert_eq!(e0, [6, 5, 4, 3, 2, 1, 0]);
    let e1: Vec<Element> = sampled.iter().collect::<crate::Result<_>>().unwrap();
    assert_eq!(
        e1[0].pair().unwrap().0,
        &Tensor::from([[2f32, 3.], [2., 3.]])
    );
    let shuffled = DataLoader::new(y.clone(), 7).unwrap().shuffle(true).seed(5);
    let epochs: Vec<Vec<i32>> = (0..3)
        .map(|_| {
            shuffled
                .iter()
                .next()
                .unwrap()
                .unwrap()
                .tensor()
                .unwrap()
                .to_vec()
                .unwrap()
        })
        .collect();
    assert!(epochs[0] != epochs[1] || epochs[1] != epochs[2]);
    let again = DataLoader::new(y.clone(), 7).unwrap().shuffle(true).seed(5);
    let first: Vec<i32> = again
        .iter()
        .next()
        .unwrap()
        .unwrap()
        .tensor()
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(first, epochs[0]);
    let out_of_range = DataLoader::new(y, 2).unwrap().sampler(|_| vec![9]);
    assert!(out_of_range.iter().next().unwrap().is_err());
    assert!(DataLoader::new(x, 0).is_err());
}

fn write_records(path: &PathBuf, records: &[Vec<u8>]) {
    write_records_with(path, records, Compression::None)
}

fn write_records_with(path: &PathBuf, records: &[Vec<u8>], compression: Compression) {
    let mut w = TFRecordWriter::create_with(path, compression).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    w.close().unwrap();
}

#[test]
fn tfrecord_round_trip_and_known_bytes() {
    let path = tmp("roundtrip.tfrecord");
    let records = vec![b"hello".to_vec(), vec![], vec![7u8; 1000]];
    write_records(&path, &records);
    let bytes = std::fs::read(&path).unwrap();
    // The framing of "hello" as TensorFlow writes it: length 5, masked crcs.
    assert_eq!(&bytes[..8], &5u64.to_le_bytes());
    assert_eq!(
        &bytes[8..12],
        &crate::crc::mask(crate::crc::crc32c(&5u64.to_le_bytes())).to_le_bytes()
    );
    let read: Vec<Vec<u8>> = TFRecordReader::open(&path)
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(read, records);
    let ds = Dataset::from_tfrecord(&[&path, &path]);
    let elems = ds.collect().unwrap();
    assert_eq!(elems.len(), 6);
    assert_eq!(elems[3].tensor().unwrap().to_vec::<u8>().unwrap(), b"hello");
    std::fs::remove_file(&path).unwrap();
    let missing = Dataset::from_tfrecord(&[&path]).collect().unwrap_err();
    assert!(matches!(missing, crate::Error::Io(_)), "{missing}");
}

#[test]
fn corrupt_tfrecords_are_errors_naming_file_and_offset() {
    let path = tmp("corrupt.tfrecord");
    write_records(&path, &[b"first".to_vec(), b"second".to_vec()]);
    let good = std::fs::read(&path).unwrap();
    let second = 16 + 5; // offset of the second record
    let check = |bytes: &[u8], want: &str| {
        std::fs::write(&path, bytes).unwrap();
        let items: Vec<_> = Dataset::from_tfrecord(&[&path]).iter().collect();
        let err = items.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(want), "{err} lacks {want}");
        items.len()
    };
    // A flipped data byte of the second record.
    let mut b = good.clone();
    b[second + 12] ^= 1;
    assert_eq!(
        check(
            &b,
            &format!("offset {second}: the crc32c of the 6-byte record")
        ),
        2
    );
    // A flipped length byte: its crc no longer matches.
    let mut b = good.clone();
    b[0] ^= 4;
    assert_eq!(check(&b, "offset 0: the length's crc32c"), 1);
    // A huge length with a valid crc is bounded by the file size, not allocated.
    let mut b = good.clone();
    let huge = (1u64 << 60).to_le_bytes();
    b[second..second + 8].copy_from_slice(&huge);
    b[second + 8..second + 12]
        .copy_from_slice(&crate::crc::mask(crate::crc::crc32c(&huge)).to_le_bytes());
    assert_eq!(check(&b, "exceeds the"), 2);
    // A truncated file.
    assert_eq!(check(&good[..second + 10], "10 bytes left, fewer than"), 2);
    let cut = check(
        &good[..good.len() - 1],
        &format!("offset {second}: record length 6 exceeds"),
    );
    assert_eq!(cut, 2);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn examples_parse_by_spec() {
    let record = ExampleBuilder::new()
        .float("x", &[1.0, 2.0, 3.0, 4.0])
        .int64("label", &[3])
        .bytes("name", &[b"abc"])
        .float("ragged", &[0.5])
        .to_bytes();
    let parser = ExampleParser::new()
        .feature("x", FeatureSpec::fixed_len(DType::Float32, &[2, 2]))
        .feature("label", FeatureSpec::fixed_len(DType::Int64, &[]))
        .feature("name", FeatureSpec::fixed_len(DType::UInt8, &[]))
        .feature("ragged", FeatureSpec::var_len(DType::Float32))
        .feature("absent", FeatureSpec::var_len(DType::Int64))
        .feature(
            "weight",
            FeatureSpec::fixed_len(DType::Float32, &[]).with_default(Tensor::scalar(1f32)),
        );
    let e = parser.parse(&record).unwrap();
    let t = |k: &str| e.get(k).unwrap().tensor().unwrap().clone();
    assert_eq!(t("x"), Tensor::from([[1f32, 2.], [3., 4.]]));
    assert_eq!(t("label"), Tensor::scalar(3i64));
    assert_eq!(t("name"), Tensor::from(b"abc".to_vec()));
    assert_eq!(t("ragged"), Tensor::from([0.5f32]));
    assert_eq!(t("absent").shape(), &[0]);
    assert_eq!(t("weight"), Tensor::scalar(1f32));
    let err = |p: ExampleParser| p.parse(&record).unwrap_err().to_string();
    let wrong_len =
        err(ExampleParser::new().feature("x", FeatureSpec::fixed_len(DType::Float32, &[3])));
    assert!(
        wrong_len.contains("feature 'x': expected 3 values for shape [3], the record has 4"),
        "{wrong_len}"
    );
    let wrong_type =
        err(ExampleParser::new().feature("label", FeatureSpec::fixed_len(DType::Float32, &[])));
    assert!(
        wrong_type.contains("the record has a int64_list"),
        "{wrong_type}"
    );
    let missing =
        err(ExampleParser::new().feature("nope", FeatureSpec::fixed_len(DType::Int64, &[])));
    assert!(missing.contains("feature 'nope': missing"), "{missing}");
    assert!(ExampleParser::new().parse(&[0xff, 0xff]).is_err());
}

#[test]
fn csv_rows_by_header_with_types() {
    let path = tmp("rows.csv");
    std::fs::write(&path, "id,score,ok\n1,0.5,true\n2, 1.25 ,0\n").unwrap();
    let opts = CsvOptions::new(&[DType::Int64, DType::Float32, DType::Bool]);
    let rows = Dataset::from_csv(&path, opts.clone())
        .batch(10, false)
        .collect()
        .unwrap();
    let t = |k: &str| rows[0].get(k).unwrap().tensor().unwrap().clone();
    assert_eq!(t("id"), Tensor::from([1i64, 2]));
    assert_eq!(t("score"), Tensor::from([0.5f32, 1.25]));
    assert_eq!(t("ok"), Tensor::from([true, false]));
    let tuples = Dataset::from_csv(&path, opts.clone().header(false)).collect();
    assert!(tuples
        .unwrap_err()
        .to_string()
        .contains("line 1: column 0: cannot parse 'id' as int64"));
    std::fs::write(&path, "1;2\n3;4\n").unwrap();
    let semi = CsvOptions::new(&[DType::Int32, DType::Int32])
        .header(false)
        .delimiter(b';');
    let t = Dataset::from_csv(&path, semi).collect().unwrap();
    assert_eq!(t[1].pair().unwrap().1, &Tensor::scalar(4i32));
    std::fs::write(&path, "id,score,ok\n1,x,true\n").unwrap();
    let err = Dataset::from_csv(&path, opts.clone())
        .collect()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2: column 'score': cannot parse 'x' as float32"),
        "{err}"
    );
    std::fs::write(&path, "id,score,ok\n1,2\n").unwrap();
    let err = Dataset::from_csv(&path, opts)
        .collect()
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2: 2 fields, expected 3"), "{err}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn npy_files_as_slices() {
    let (a, b) = (tmp("a.npy"), tmp("b.npy"));
    write_npy(&a, &Tensor::from([[1f32, 2.], [3., 4.]])).unwrap();
    write_npy(&b, &Tensor::from([5i64, 6])).unwrap();
    let one = Dataset::from_npy(&[&a]).unwrap().collect().unwrap();
    assert_eq!(one[1].tensor().unwrap(), &Tensor::from([3f32, 4.]));
    let two = Dataset::from_npy(&[&a, &b])
        .unwrap()
        .batch(2, false)
        .collect()
        .unwrap();
    assert_eq!(two[0].pair().unwrap().1, &Tensor::from([5i64, 6]));
    std::fs::remove_file(&a).unwrap();
    assert!(Dataset::from_npy(&[&a]).is_err());
    std::fs::remove_file(&b).unwrap();
}

/// The i-th example of `tests/data/tfrecord/make_fixtures.py`.
fn fixture_example(i: i64) -> ExampleBuilder {
    let f = i as f32;
    ExampleBuilder::new()
        .float("x", &[f, f + 0.5, -f])
        .int64("label", &[i])
        .bytes("name", &[format!("rec{i}").as_bytes()])
        .int64("tokens", &(0..i).collect::<Vec<_>>())
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tfrecord")
}

#[test]
fn tensorflow_written_tfrecords() {
    let dir = fixture_dir();
    let parser = ExampleParser::new()
        .feature("x", FeatureSpec::fixed_len(DType::Float32, &[3]))
        .feature("label", FeatureSpec::fixed_len(DType::Int64, &[]))
        .feature("name", FeatureSpec::fixed_len(DType::UInt8, &[]))
        .feature("tokens", FeatureSpec::var_len(DType::Int64));
    let ds = Dataset::from_tfrecord(&[dir.join("tf_examples.tfrecord")])
        .map(move |r| parser.parse_element(&r));
    let rows = ds.collect().unwrap();
    assert_eq!(rows.len(), 4);
    for (i, e) in rows.iter().enumerate() {
        let t = |k: &str| e.get(k).unwrap().tensor().unwrap().clone();
        let f = i as f32;
        assert_eq!(t("x"), Tensor::from([f, f + 0.5, -f]));
        assert_eq!(t("label"), Tensor::scalar(i as i64));
        assert_eq!(
            t("name").to_vec::<u8>().unwrap(),
            format!("rec{i}").into_bytes()
        );
        assert_eq!(
            t("tokens"),
            Tensor::vector((0..i as i64).collect::<Vec<_>>())
        );
    }
    let raw: Vec<Vec<u8>> = TFRecordReader::open(dir.join("tf_raw.tfrecord"))
        .unwrap()
        .collect::<crate::Result<_>>()
        .unwrap();
    let mut third: Vec<u8> = (0..=255).collect();
    third.extend([b'x'; 44]);
    let fourth: Vec<u8> = (0..70000).map(|i| (i % 251) as u8).collect();
    assert_eq!(raw, vec![vec![], b"a".to_vec(), third, fourth]);
}

#[test]
fn rustflow_written_tfrecord_is_committed() {
    // The committed file is what the writer makes now, so the script's check of it
    // (tf.data reads it back) covers this writer.
    let path = fixture_dir().join("rustflow_written.tfrecord");
    let fresh = tmp("fixture.tfrecord");
    let records: Vec<Vec<u8>> = (0..4).map(|i| fixture_example(i).to_bytes()).collect();
    write_records(&fresh, &records);
    let made = std::fs::read(&fresh).unwrap();
    std::fs::remove_file(&fresh).unwrap();
    if std::env::var_os("RUSTFLOW_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, &made).unwrap();
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        made,
        "{} is stale",
        path.display()
    );
}

/// The records of a compressed file, decompressed by flate2 directly (not by the reader
/// under test) and parsed as plain framing.
fn decompress(path: &PathBuf, compression: Compression) -> Vec<u8> {
    use std::io::Read;
    let file = std::fs::File::open(path).unwrap();
    let mut out = Vec::new();
    match compression {
        Compression::Gzip => flate2::read::GzDecoder::new(file).read_to_end(&mut out),
        Compression::Zlib => flate2::read::ZlibDecoder::new(file).read_to_end(&mut out),
        Compression::None => unreachable!("plain files are read as they are"),
    }
    .unwrap();
    out
}

#[test]
fn compression_types_parse_as_tensorflow_names_them() {
    assert_eq!("".parse::<Compression>().unwrap(), Compression::None);
    assert_eq!("GZIP".parse::<Compression>().unwrap(), Compression::Gzip);
    assert_eq!("ZLIB".parse::<Compression>().unwrap(), Compression::Zlib);
    let err = "gzip".parse::<Compression>().unwrap_err().to_string();
    assert!(err.contains("\"gzip\"") && err.contains("GZIP"), "{err}");
}

#[test]
fn compressed_tfrecords_round_trip() {
    let records = vec![b"hello".to_vec(), vec![], vec![7u8; 100_000]];
    let plain = tmp("plain_for_compressed.tfrecord");
    write_records(&plain, &records);
    for (compression, magic) in [
        (Compression::Gzip, &[0x1f, 0x8b][..]),
        (Compression::Zlib, &[0x78][..]),
    ] {
        let path = tmp(&format!("roundtrip_{compression:?}.tfrecord"));
        write_records_with(&path, &records, compression);
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.starts_with(magic),
            "{compression:?}: {:?}",
            &bytes[..2]
        );
        assert!(bytes.len() < 2000, "{compression:?} did not compress");
        // The compressed stream holds exactly the plain file's framing.
        assert_eq!(
            decompress(&path, compression),
            std::fs::read(&plain).unwrap()
        );
        let read: Vec<Vec<u8>> = TFRecordReader::open_with(&path, compression)
            .unwrap()
            .collect::<crate::Result<_>>()
            .unwrap();
        assert_eq!(read, records);
        let elems = Dataset::from_tfrecord_with(&[&path, &path], compression)
            .collect()
            .unwrap();
        assert_eq!(elems.len(), 6);
        assert_eq!(elems[3].tensor().unwrap().to_vec::<u8>().unwrap(), b"hello");
        // Read as plain, the compressed file is a corrupt TFRecord, not a panic.
        assert!(TFRecordReader::open(&path).unwrap().any(|r| r.is_err()));
        std::fs::remove_file(&path).unwrap();
    }
    std::fs::remove_file(&plain).unwrap();
}

#[test]
fn corrupt_compressed_tfrecords_are_errors_naming_file_and_offset() {
    let path = tmp("corrupt_compressed.tfrecord");
    let read_all = |bytes: &[u8], compression| {
        std::fs::write(&path, bytes).unwrap();
        let items: Vec<_> = TFRecordReader::open_with(&path, compression)
            .unwrap()
            .collect();
        let err = items.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        (items.len(), err)
    };
    write_records_with(
        &path,
        &[b"first".to_vec(), vec![3u8; 5000]],
        Compression::Gzip,
    );
    let good = std::fs::read(&path).unwrap();
    // Cut in the middle of the deflate stream: the second record is truncated.
    let (n, err) = read_all(&good[..good.len() / 2], Compression::Gzip);
    assert!(n <= 2, "{err}");
    // A damaged gzip trailer (the stream's crc32) is caught by the decoder.
    let mut b = good.clone();
    let at = b.len() - 6;
    b[at] ^= 0xff;
    let (_, err) = read_all(&b, Compression::Gzip);
    assert!(err.contains("offset"), "{err}");
    // Not a gzip file at all.
    let (n, err) = read_all(b"plain text, not gzip", Compression::Gzip);
    assert_eq!(n, 1, "{err}");
    // A record claiming 2^40 bytes (with a valid length crc) inside a small stream: an
    // error once the stream ends, without allocating the claimed length.
    let mut framing = Vec::new();
    crate::data::write_framed(&mut framing, b"ok").unwrap();
    let huge = 1u64 << 40;
    framing.extend(huge.to_le_bytes());
    framing.extend(crate::crc::mask(crate::crc::crc32c(&huge.to_le_bytes())).to_le_bytes());
    framing.extend([0u8; 10]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &framing).unwrap();
    let (n, err) = read_all(&z.finish().unwrap(), Compression::Zlib);
    assert_eq!(n, 2, "{err}");
    assert!(
        err.contains("offset 18 of the decompressed stream")
            && err.contains("ends 10 bytes into a record of length 1099511627776"),
        "{err}"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn tensorflow_written_compressed_tfrecords() {
    let dir = fixture_dir();
    let plain: Vec<Vec<u8>> = TFRecordReader::open(dir.join("tf_raw.tfrecord"))
        .unwrap()
        .collect::<crate::Result<_>>()
        .unwrap();
    assert_eq!(plain.len(), 4);
    for (file, compression) in [
        ("tf_raw.tfrecord.gz", Compression::Gzip),
        ("tf_raw.tfrecord.zlib", Compression::Zlib),
    ] {
        let read: Vec<Vec<u8>> = TFRecordReader::open_with(dir.join(file), compression)
            .unwrap()
            .collect::<crate::Result<_>>()
            .unwrap();
        assert_eq!(read, plain, "{file}");
    }
}

#[test]
fn rustflow_written_compressed_tfrecords() {
    // The committed compressed files (read back by tf.data in the fixture script) hold
    // exactly the records the writer makes now: they decompress to the committed plain
    // file, as a freshly written compressed file does.
    let dir = fixture_dir();
    let plain = std::fs::read(dir.join("rustflow_written.tfrecord")).unwrap();
    let records: Vec<Vec<u8>> = (0..4).map(|i| fixture_example(i).to_bytes()).collect();
    for (ext, compression) in [("gz", Compression::Gzip), ("zlib", Compression::Zlib)] {
        let path = dir.join(format!("rustflow_written.tfrecord.{ext}"));
        let fresh = tmp(&format!("fixture.tfrecord.{ext}"));
        write_records_with(&fresh, &records, compression);
        if std::env::var_os("RUSTFLOW_WRITE_FIXTURES").is_some() {
            std::fs::copy(&fresh, &path).unwrap();
        }
        assert_eq!(decompress(&fresh, compression), plain, "{ext}");
        assert_eq!(
            decompress(&path, compression),
            plain,
            "{} is stale",
            path.display()
        );
        std::fs::remove_file(&fresh).unwrap();
    }
}

#[test]
fn example_wire_forms_prost_accepts_too() {
    // Hand-made: an unknown varint field, then features {"f": unpacked floats 1.5, 2.5;
    // "i": unpacked int64 -1, then packed 7}, and a later duplicate "f" holding 4.0.
    let entry = |name: &[u8], feature: &[u8]| {
        let mut e = vec![0x0a, name.len() as u8];
        e.extend_from_slice(name);
        e.extend([0x12, feature.len() as u8]);
        e.extend_from_slice(feature);
        let mut out = vec![0x0a, e.len() as u8];
        out.extend(e);
        out
    };
    let floats = |vals: &[f32]| {
        let mut list = Vec::new();
        for v in vals {
            list.push(0x0d);
            list.extend(v.to_le_bytes());
        }
        let mut f = vec![0x12, list.len() as u8];
        f.extend(list);
        f
    };
    let mut ints = vec![0x1a, 14, 0x08];
    ints.extend([0xff; 9]);
    ints.extend([0x01, 0x0a, 0x01, 0x07]);
    let mut features = entry(b"f", &floats(&[1.5, 2.5]));
    features.extend(entry(b"i", &ints));
    features.extend(entry(b"f", &floats(&[4.0])));
    let mut record = vec![0x10, 0x05, 0x0a, features.len() as u8];
    record.extend(features);
    let parser = ExampleParser::new()
        .feature("f", FeatureSpec::var_len(DType::Float32))
        .feature("i", FeatureSpec::var_len(DType::Int64));
    let e = parser.parse(&record).unwrap();
    assert_eq!(e.get("f").unwrap().tensor().unwrap(), &Tensor::from([4f32]));
    assert_eq!(
        e.get("i").unwrap().tensor().unwrap(),
        &Tensor::from([-1i64, 7])
    );
    let proto = decode_example(&record).unwrap().features.unwrap().feature;
    use crate::proto::tf::feature::Kind;
    assert!(matches!(&proto["f"].kind, Some(Kind::FloatList(l)) if l.value == [4.0]));
    assert!(matches!(&proto["i"].kind, Some(Kind::Int64List(l)) if l.value == [-1, 7]));
    for cut in 1..record.len() {
        let r = parser.parse(&record[..cut]);
        assert!(r.is_err() || cut < 3, "cut at {cut} parsed");
    }
}

#[test]
fn graph_functions_map_elements() {
    use crate::graph::TensorSpec;
    // ds.map(lambda x, y: (tf.reduce_sum(tf.cast(x, tf.float32) * 0.5), y + 1))
    let f = GraphFunction::new(
        &[
            TensorSpec::new(DType::Int32, [Some(3)]),
            TensorSpec::new(DType::Int64, PartialShape::scalar()),
        ],
        |g, args| {
            let x = g.cast(args[0], DType::Float32)?;
            let half = g.constant(Tensor::scalar(0.5f32))?;
            let x = g.mul(x, half)?;
            let one = g.constant(Tensor::scalar(1i64))?;
            Ok(vec![g.reduce_sum(x, &[0], false)?, g.add(args[1], one)?])
        },
    )
    .unwrap();
    let x = Tensor::new(&[4, 3], (0..12).collect::<Vec<i32>>()).unwrap();
    let y = Tensor::from([10i64, 20, 30, 40]);
    let ds = Dataset::from_tensor_slices((x, y)).unwrap();
    let want: Vec<(f32, i64)> = (0..4)
        .map(|i| {
            (
                (3 * i..3 * i + 3).sum::<i32>() as f32 * 0.5,
                10 * (i as i64 + 1) + 1,
            )
        })
        .collect();
    let got = |ds: Dataset| -> Vec<(f32, i64)> {
        ds.collect()
            .unwrap()
            .iter()
            .map(|e| {
                let (a, b) = e.pair().unwrap();
                (a.to_vec::<f32>().unwrap()[0], b.to_vec::<i64>().unwrap()[0])
            })
            .collect()
    };
    assert_eq!(got(ds.map_graph(&f)), want);
    // Worker threads share the function's session; the order is kept.
    let g = f.clone();
    assert_eq!(
        got(ds.map_with(move |e| g.call(e), MapOptions::parallel(3))),
        want
    );
    // A single-output function gives tensor elements.
    let square = GraphFunction::new(
        &[TensorSpec::new(DType::Int64, PartialShape::scalar())],
        |g, a| Ok(vec![g.mul(a[0], a[0])?]),
    )
    .unwrap();
    let squares = Dataset::range(4).map_graph(&square).collect().unwrap();
    let squares: Vec<i64> = squares
        .iter()
        .map(|e| e.tensor().unwrap().to_vec::<i64>().unwrap()[0])
        .collect();
    assert_eq!(squares, vec![0, 1, 4, 9]);
}

#[test]
fn graph_function_errors_name_the_signature() {
    use crate::graph::TensorSpec;
    let spec = [TensorSpec::new(DType::Float32, [Some(2)])];
    let identity = GraphFunction::new(&spec, |_, a| Ok(vec![a[0]])).unwrap();
    let err = |ds: Dataset| ds.collect().unwrap_err().to_string();
    // A tuple where one tensor is expected.
    let pairs = Dataset::from_tensor_slices((Tensor::from([1.0f32]), Tensor::from([2.0f32])));
    let e = err(pairs.unwrap().map_graph(&identity));
    assert!(
        e.contains("taking ([2] float32) got a (tensor, tensor) element"),
        "{e}"
    );
    // A wrong dtype or shape is refused by the function's placeholder.
    let e = err(Dataset::range(2).map_graph(&identity));
    assert!(
        e.contains("in a dataset graph function") && e.contains("int64"),
        "{e}"
    );
    let rows = Tensor::new(&[2, 3], vec![0f32; 6]).unwrap();
    let e = err(Dataset::from_tensor_slices(rows)
        .unwrap()
        .map_graph(&identity));
    assert!(e.contains("shape"), "{e}");
    // A kernel failing inside the function names its node.
    let any_length = [TensorSpec::new(DType::Float32, [None])];
    let bad = GraphFunction::new(&any_length, |g, a| Ok(vec![g.reshape(a[0], &[3])?])).unwrap();
    let ok = Tensor::new(&[1, 2], vec![1f32, 2.0]).unwrap();
    let e = err(Dataset::from_tensor_slices(ok).unwrap().map_graph(&bad));
    assert!(e.contains("Reshape") && e.contains("failed"), "{e}");
    // Build-time errors: no inputs, no outputs, a bad op.
    assert!(GraphFunction::new(&[], |_, _| Ok(vec![])).is_err());
    assert!(GraphFunction::new(&spec, |_, _| Ok(vec![])).is_err());
    let e = GraphFunction::new(&spec, |g, a| {
        let m = g.constant(Tensor::new(&[3, 3], vec![0f32; 9])?)?;
        Ok(vec![g.matmul(a[0], m)?])
    });
    assert!(e.is_err());
}

#[test]
fn huge_sizes_reserve_nothing_up_front() {
    // Each of these once asked for its whole bound at once: a channel of 2^64 slots
    // (prefetch), a vector of 2^64 elements (batch), a thread per call (map).
    assert_eq!(
        ints(&Dataset::range(10).prefetch(usize::MAX)),
        (0..10).collect::<Vec<_>>()
    );
    let b = Dataset::range(3)
        .batch(usize::MAX, false)
        .collect()
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].tensor().unwrap(), &Tensor::from([0i64, 1, 2]));
    let doubled = Dataset::range(300).map_with(
        |e| Ok(Tensor::scalar(e.tensor()?.scalar_value::<i64>()? * 2).into()),
        MapOptions::parallel(usize::MAX),
    );
    assert_eq!(ints(&doubled), (0..300).map(|i| i * 2).collect::<Vec<_>>());
    let x = Tensor::from([[1f32], [2.], [3.]]);
    let loader = DataLoader::new(x.clone(), usize::MAX)
        .unwrap()
        .num_workers(usize::MAX);
    let batches = loader.dataset().collect().unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].tensor().unwrap(), &x);
}

#[test]
fn a_padded_shape_too_large_to_allocate_is_an_error() {
    let ds = Dataset::from_tensor_slices(Tensor::from([[1i32, 2], [3, 4]])).unwrap();
    for dims in [vec![Some(1 << 40)], vec![Some(usize::MAX)]] {
        let padding = Padding {
            shapes: vec![dims],
            value: 0.0,
        };
        let err = ds
            .padded_batch_with(2, false, padding)
            .collect()
            .unwrap_err();
        assert!(matches!(err, crate::Error::ResourceExhausted(_)), "{err}");
        assert!(err.to_string().contains("int32"), "{err}");
    }
}
