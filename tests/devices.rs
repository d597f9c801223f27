//! Devices as the engine sees them, tried with a second device registered from this test:
//! `TEST`, whose memory is a host tensor the host may not read directly (so every host
//! accessor must fail on it), and which counts the copies into and out of it. Placement
//! follows `Graph::device` scopes, variables stay on their device, copies appear only where
//! a value crosses devices, and an op without a `TEST` kernel falls back to the CPU.

use rustflow::device::{register_device_factory, Device};
use rustflow::kernel::{kernel_fn, KernelBuildCtx, KernelDef, KernelResult};
use rustflow::tensor::DeviceMemory;
use rustflow::{DType, Graph, Result, Session, Tensor};
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

const NAME: &str = "/device:TEST:0";
static COPIES_IN: AtomicUsize = AtomicUsize::new(0);
static COPIES_OUT: AtomicUsize = AtomicUsize::new(0);

/// The test device's memory: a host tensor, hidden from the host behind `DeviceMemory`.
#[derive(Debug)]
struct TestMemory(Tensor);

impl DeviceMemory for TestMemory {
    fn device(&self) -> &str {
        NAME
    }
    fn dtype(&self) -> DType {
        self.0.dtype()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[derive(Debug)]
struct TestDevice;

impl Device for TestDevice {
    fn name(&self) -> &str {
        NAME
    }
    fn device_type(&self) -> &'static str {
        "TEST"
    }
    fn index(&self) -> usize {
        0
    }
    fn copy_from_host(&self, t: &Tensor) -> Result<Tensor> {
        COPIES_IN.fetch_add(1, Ordering::SeqCst);
        Tensor::from_device(t.shape(), Arc::new(TestMemory(t.expect_host()?.clone())))
    }
    fn copy_to_host(&self, t: &Tensor) -> Result<Tensor> {
        COPIES_OUT.fetch_add(1, Ordering::SeqCst);
        Ok(unwrap(t))
    }
}

/// The host tensor inside a TEST tensor (only TEST kernels may do this).
fn unwrap(t: &Tensor) -> Tensor {
    let memory = t
        .device_memory()
        .expect("a TEST kernel was given host memory");
    let inner = memory.as_any().downcast_ref::<TestMemory>().unwrap();
    inner.0.clone()
}

fn wrap(t: Tensor) -> Tensor {
    let shape = t.shape().to_vec();
    Tensor::from_device(&shape, Arc::new(TestMemory(t))).unwrap()
}

/// A TEST kernel of `op`: the CPU kernel run on the host tensors inside its inputs, its
/// outputs put back into TEST memory.
fn adapted(op: &str, ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let cpu = rustflow::ops::registry::kernels()
        .find(op, "CPU", None)
        .copied()
        .expect("a CPU kernel");
    let inner = (cpu.build)(ctx)?;
    kernel_fn(move |k| {
        let inputs = (0..k.num_inputs())
            .map(|i| k.input(i).ok().map(unwrap))
            .collect();
        for out in k.compute_with(inner.as_ref(), inputs)? {
            k.push_output(wrap(out));
        }
        Ok(())
    })
}

fn test_matmul(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    adapted("MatMul", ctx)
}

fn test_add(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    adapted("AddV2", ctx)
}

/// Registers the device and its kernels once; serializes the tests (they count copies).
fn setup() -> MutexGuard<'static, ()> {
    static ONCE: OnceLock<()> = OnceLock::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    ONCE.get_or_init(|| {
        register_device_factory("TEST", || vec![Arc::new(TestDevice)]);
        use rustflow::ops::register_kernel;
        register_kernel(
            KernelDef::new("MatMul", "TEST", test_matmul).type_constraint(&[DType::Float32]),
        );
        register_kernel(KernelDef::new("AddV2", "TEST", test_add));
        // Kernels that never read elements run on any memory as they are.
        let cpu = |op| {
            rustflow::ops::registry::kernels()
                .find(op, "CPU", None)
                .copied()
                .unwrap()
                .build
        };
        for op in ["VariableV2", "Assign", "Identity"] {
            register_kernel(KernelDef::new(op, "TEST", cpu(op)));
        }
        // Shape writes host memory; Reshape reads its shape from host memory.
        register_kernel(KernelDef::new("Shape", "TEST", cpu("Shape")).host_outputs());
        register_kernel(KernelDef::new("Reshape", "TEST", cpu("Reshape")).host_memory(&[1]));
    });
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    COPIES_IN.store(0, Ordering::SeqCst);
    COPIES_OUT.store(0, Ordering::SeqCst);
    guard
}

fn copies() -> (usize, usize) {
    (
        COPIES_IN.load(Ordering::SeqCst),
        COPIES_OUT.load(Ordering::SeqCst),
    )
}

#[test]
fn steps_run_where_their_scope_puts_them_and_copies_cross_devices_once() {
    let _serial = setup();
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [2, 2], "x").unwrap();
    let w0 = g
        .constant(Tensor::from([[1.0f32, 2.0], [3.0, 4.0]]))
        .unwrap();
    let (w, y) = g.device(NAME, |g| {
        let w = g.variable(w0, "w").unwrap();
        let y = g.matmul(x, w.read).unwrap();
        (w, y)
    });
    assert_eq!(g.node(y.node).device(), NAME);
    assert_eq!(g.node(w.var.node).device(), NAME);
    let z = g.add(y, y).unwrap();
    assert_eq!(g.node(z.node).device(), "");
    let init = g.global_variables_initializer().unwrap();

    let sess = Session::new(&g);
    assert_eq!(sess.devices().devices().len(), 2);
    sess.run(&[], &[], &[init]).unwrap();
    // The initial value went onto the device, once.
    assert_eq!(copies(), (1, 0));

    let feed = Tensor::from([[1.0f32, 0.0], [0.0, 2.0]]);
    for _ in 0..2 {
        COPIES_IN.store(0, Ordering::SeqCst);
        COPIES_OUT.store(0, Ordering::SeqCst);
        let out = sess.run(&[(x, feed.clone())], &[y, z], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([[1.0f32, 2.0], [6.0, 8.0]]));
        assert_eq!(out[1], Tensor::from([[2.0f32, 4.0], [12.0, 16.0]]));
        assert!(out[0].is_host() && out[1].is_host());
        // x onto the device; y off it once, for both the fetch and the add.
        assert_eq!(copies(), (1, 1));
    }

    // The variable's value never left its device.
    let var = sess.resources().variable("w").unwrap();
    let value = var.read().unwrap();
    assert!(!value.is_host());
    assert_eq!(value.location(), NAME);
    // Host accessors fail clearly on device memory.
    let err = value.as_slice::<f32>().unwrap_err().to_string();
    assert!(err.contains(NAME) && err.contains("host"), "{err}");
    assert!(value.to_i64_vec().is_err());
    // Fetching the variable copies it to the host.
    let fetched = sess.run(&[], &[w.read], &[]).unwrap().remove(0);
    assert_eq!(fetched, Tensor::from([[1.0f32, 2.0], [3.0, 4.0]]));
}

#[test]
fn ops_without_a_kernel_on_the_device_fall_back_to_the_cpu() {
    let _serial = setup();
    let mut g = Graph::new();
    let a = g
        .constant(Tensor::from([[1.0f64, 2.0], [3.0, 4.0]]))
        .unwrap();
    let (p, r, far) = g.device(NAME, |g| {
        // No float64 MatMul and no Relu on TEST; no such device as GPU:3.
        let p = g.matmul(a, a).unwrap();
        let r = g.relu(p).unwrap();
        let far = g
            .op("Neg")
            .input(a)
            .attr("T", DType::Float64)
            .device("/device:GPU:3")
            .build_output()
            .unwrap();
        (p, r, far)
    });
    let out = Session::new(&g).run(&[], &[p, r, far], &[]).unwrap();
    assert_eq!(out[0], Tensor::from([[7.0f64, 10.0], [15.0, 22.0]]));
    assert_eq!(out[1], out[0]);
    assert_eq!(out[2], Tensor::from([[-1.0f64, -2.0], [-3.0, -4.0]]));
    // All of it ran on the host: nothing was copied.
    assert_eq!(copies(), (0, 0));
}

#[test]
fn device_strings_in_every_spelling_are_understood() {
    use rustflow::device::DeviceSpec;
    for (s, t, i) in [
        (
            "/job:localhost/replica:0/task:0/device:TEST:0",
            Some("TEST"),
            Some(0),
        ),
        ("/device:CPU:0", Some("CPU"), Some(0)),
        ("/cpu:0", Some("CPU"), Some(0)),
        ("/gpu:1", Some("GPU"), Some(1)),
        ("/device:GPU:*", Some("GPU"), None),
        ("", None, None),
    ] {
        let spec = DeviceSpec::parse(s).unwrap();
        assert_eq!(spec.device_type.as_deref(), t, "{s}");
        assert_eq!(spec.index, i, "{s}");
    }
    assert!(DeviceSpec::parse("/device:GPU:x").is_err());
}

#[test]
fn without_soft_placement_a_missing_device_or_kernel_is_an_error_naming_the_node() {
    let _serial = setup();
    let strict = rustflow::SessionOptions {
        allow_soft_placement: false,
        ..rustflow::SessionOptions::default()
    };
    // A GPU the session lacks (no `cuda` feature, no GPU, or not that many GPUs).
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([1.0f32, -2.0])).unwrap();
    let far = g.device("/device:GPU:9", |g| g.neg(a)).unwrap();
    let err = Session::with_options(&g, strict.clone())
        .run(&[], &[far], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(g.node(far.node).name())
            && err.contains("/device:GPU:9")
            && err.contains("no such device")
            && err.contains("/device:CPU:0")
            && err.contains("soft placement"),
        "{err}"
    );
    // With soft placement (the default) the same graph runs on the CPU.
    let out = Session::new(&g).run(&[], &[far], &[]).unwrap();
    assert_eq!(out[0], Tensor::from([-1.0f32, 2.0]));

    // A device that exists but has no kernel for the op (no Relu on TEST).
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([1.0f32, -2.0])).unwrap();
    let r = g.device(NAME, |g| g.relu(a)).unwrap();
    let err = Session::with_options(&g, strict)
        .run(&[], &[r], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(g.node(r.node).name()) && err.contains("no TEST kernel of op Relu"),
        "{err}"
    );
    assert_eq!(copies(), (0, 0));
}

#[test]
fn host_memory_inputs_and_outputs_of_device_kernels_are_not_copied_to_the_device() {
    let _serial = setup();
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [2, 3], "x").unwrap();
    let (s, r) = g.device(NAME, |g| {
        let y = g.add(x, x).unwrap();
        let s = g.shape_of(y).unwrap();
        let r = g.reshape(y, &[6]).unwrap();
        let back = g.reshape_t(r, s).unwrap();
        (s, back)
    });
    let feed = Tensor::new(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let out = Session::new(&g)
        .run(&[(x, feed.clone())], &[r, s], &[])
        .unwrap();
    assert_eq!(
        out[0],
        Tensor::new(&[2, 3], vec![2.0f32, 4.0, 6.0, 8.0, 10.0, 12.0]).unwrap()
    );
    assert_eq!(out[1], Tensor::vector(vec![2i32, 3]));
    // Only x went onto the device and only the result came off it: the shapes (a constant
    // and Shape's output) stayed on the host, and fetching Shape's output copied nothing.
    assert_eq!(copies(), (1, 1));
}

#[test]
fn a_device_variable_is_read_back_through_its_session_and_saved_from_there() {
    let _serial = setup();
    let mut g = Graph::new();
    let w0 = g.constant(Tensor::from([1.0f32, 2.0])).unwrap();
    g.device(NAME, |g| g.variable(w0, "w")).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sess = Session::new(&g);
    sess.run(&[], &[], &[init]).unwrap();
    let value = sess.resources().variable("w").unwrap().read().unwrap();
    assert_eq!(value.location(), NAME);
    assert_eq!(sess.to_host(&value).unwrap(), Tensor::from([1.0f32, 2.0]));
    // A SavedModel of a session whose variable lives on the device holds its value.
    let dir = tempfile::tempdir().unwrap();
    let signatures = std::collections::BTreeMap::new();
    rustflow::saved_model::save(&sess, &g, dir.path(), &["serve"], &signatures).unwrap();
    let loaded = rustflow::saved_model::load(dir.path(), &["serve"], Default::default()).unwrap();
    let restored = loaded
        .session
        .resources()
        .variable("w")
        .unwrap()
        .read()
        .unwrap();
    assert_eq!(
        loaded.session.to_host(&restored).unwrap(),
        Tensor::from([1.0f32, 2.0])
    );
}
