//! Runs a [`Plan`] step by step on host memory: one arena per plan, persistents shared.

use kiln_graph::{KernelTime, Location, Op, Plan, Step, TensorRef};

use crate::ops::{activation, conv, elementwise, embedding, layout, loss, matmul, optim, reduce};
use crate::Real;

/// Host memory a plan runs over.
pub struct Memory<'a, T> {
    pub arena: &'a mut [T],
    pub persistents: &'a mut [Vec<T>],
}

impl<T: Real> Memory<'_, T> {
    fn range(r: &TensorRef) -> (Location, std::ops::Range<usize>) {
        match r.location {
            Location::Arena { offset } => (r.location, offset..offset + r.len()),
            Location::Persistent(_) => (r.location, 0..r.len()),
        }
    }

    fn read(&self, r: &TensorRef) -> &[T] {
        match Self::range(r) {
            (Location::Arena { .. }, range) => &self.arena[range],
            (Location::Persistent(id), range) => &self.persistents[id.0][range],
        }
    }
}

/// Runs every step of `plan`. Inputs must already be in the arena.
pub fn run_plan<T: Real>(plan: &Plan, mem: &mut Memory<'_, T>) {
    for step in &plan.steps {
        run_step(step, mem);
    }
}

/// Runs every step of `plan` like [`run_plan`], timing each one with the host clock.
pub fn run_plan_timed<T: Real>(plan: &Plan, mem: &mut Memory<'_, T>) -> Vec<KernelTime> {
    plan.steps
        .iter()
        .map(|step| {
            let start = std::time::Instant::now();
            run_step(step, mem);
            KernelTime {
                kernel: step.op.name().to_string(),
                seconds: start.elapsed().as_secs_f64(),
            }
        })
        .collect()
}

fn run_step<T: Real>(step: &Step, mem: &mut Memory<'_, T>) {
    if step.op.is_effect() {
        return run_effect(step, mem);
    }
    let out_ref = step.output.as_ref().expect("pure ops have an output");
    let Location::Arena { offset: out_off } = out_ref.location else {
        panic!("outputs live in the arena");
    };
    let out_range = out_off..out_off + out_ref.len();
    assert!(out_range.end <= mem.arena.len(), "output outside the arena");
    let base = mem.arena.as_mut_ptr();
    let inputs: Vec<&[T]> = step
        .inputs
        .iter()
        .map(|r| match r.location {
            Location::Arena { offset } => {
                let range = offset..offset + r.len();
                assert!(
                    range.end <= out_range.start || out_range.end <= range.start || r.is_empty(),
                    "{}: operand overlaps its output",
                    step.op.name()
                );
                assert!(range.end <= mem.arena.len(), "operand outside the arena");
                // SAFETY: in bounds (asserted) and disjoint from the output range (asserted), so
                // these shared slices never alias the one mutable slice below.
                unsafe { std::slice::from_raw_parts(base.add(offset), r.len()) }
            }
            Location::Persistent(id) => &mem.persistents[id.0][..],
        })
        .collect();
    // SAFETY: in bounds and disjoint from every operand slice (asserted above).
    let out = unsafe { std::slice::from_raw_parts_mut(base.add(out_off), out_ref.len()) };
    compute(step, &inputs, out);
}

fn compute<T: Real>(step: &Step, x: &[&[T]], out: &mut [T]) {
    let x = |k: usize| x[k];
    let shape = |k: usize| &step.inputs[k].shape;
    match &step.op {
        Op::Fill { value, .. } => elementwise::fill(T::of(*value), out),
        Op::MatMul {
            trans_a,
            trans_b,
            bias,
            epilogue,
        } => {
            let (a, b) = (shape(0).dims(), shape(1).dims());
            let (m, k) = if *trans_a { (a[1], a[0]) } else { (a[0], a[1]) };
            let n = if *trans_b { b[0] } else { b[1] };
            let bias = bias.then(|| x(2));
            matmul::matmul(x(0), x(1), bias, out, (m, k, n), *trans_a, *trans_b, *epilogue);
        }
        Op::BiasAdd => elementwise::bias_add(x(0), x(1), out),
        Op::Relu => activation::relu(x(0), out),
        Op::Sigmoid => activation::sigmoid(x(0), out),
        Op::Softmax => activation::softmax(x(0), shape(0).last(), out),
        Op::ReluGrad => activation::relu_grad(x(0), x(1), out),
        Op::SigmoidGrad => activation::sigmoid_grad(x(0), x(1), out),
        Op::SoftmaxGrad => activation::softmax_grad(x(0), x(1), shape(0).last(), out),
        Op::Add => elementwise::add(x(0), x(1), out),
        Op::Sub => elementwise::sub(x(0), x(1), out),
        Op::Mul => elementwise::mul(x(0), x(1), out),
        Op::Scale { factor } => elementwise::scale(x(0), T::of(*factor), out),
        Op::Sign => elementwise::signum(x(0), out),
        Op::Equal => elementwise::equal(x(0), x(1), out),
        Op::Greater { threshold } => elementwise::greater(x(0), T::of(*threshold), out),
        Op::Im2Col { window } => conv::im2col(x(0), window, out),
        Op::Col2Im { window } => conv::col2im(x(0), window, out),
        Op::MaxPool2d { window } => conv::max_pool2d(x(0), window, out),
        Op::MaxPool2dGrad { window } => conv::max_pool2d_grad(x(0), x(1), window, out),
        Op::Reshape { .. } => out.copy_from_slice(x(0)),
        Op::Embedding => embedding::embedding(x(0), x(1), shape(0).dims()[1], out),
        Op::EmbeddingGrad { vocab } => embedding::embedding_grad(x(0), x(1), *vocab, shape(1).last(), out),
        Op::Div => elementwise::div(x(0), x(1), out),
        Op::Log => elementwise::ln(x(0), out),
        Op::Clip { min, max } => elementwise::clip(x(0), T::of(*min), T::of(*max), out),
        Op::Dropout { rate, seed } => elementwise::dropout(x(0), x(1)[0], *rate, *seed, out),
        Op::Concat { axis } => {
            let (outer, la, inner) = shape(0).split_at_axis(*axis);
            layout::concat(x(0), x(1), (outer, la, shape(1).dims()[*axis], inner), out)
        }
        Op::Slice { axis, start, len } => layout::slice(x(0), shape(0).split_at_axis(*axis), *start, *len, out),
        Op::Sum { axis } => reduce::sum(x(0), shape(0).split_at_axis(*axis), T::one(), out),
        Op::Mean { axis } => {
            let dims = shape(0).split_at_axis(*axis);
            reduce::sum(x(0), dims, T::one() / T::of(dims.1 as f32), out)
        }
        Op::Broadcast { axis, .. } => reduce::broadcast(x(0), out_split(step, *axis), out),
        Op::ArgMax => reduce::argmax(x(0), shape(0).last(), out),
        Op::CountAbove { thresholds } => {
            let d = shape(0).dims();
            reduce::count_above(x(0), x(1), (d[0], d[1]), *thresholds, out)
        }
        Op::SoftmaxCrossEntropy { sparse } => loss::softmax_cross_entropy(x(0), x(1), shape(0).last(), *sparse, out),
        Op::SoftmaxCrossEntropyGrad { sparse } => {
            loss::softmax_cross_entropy_grad(x(0), x(1), x(2), shape(0).last(), *sparse, out)
        }
        Op::SigmoidBinaryCrossEntropy => loss::sigmoid_binary_cross_entropy(x(0), x(1), out),
        Op::SigmoidBinaryCrossEntropyGrad => loss::sigmoid_binary_cross_entropy_grad(x(0), x(1), x(2), out),
        Op::SquaredError => loss::squared_error(x(0), x(1), out),
        Op::AbsoluteError => loss::absolute_error(x(0), x(1), out),
        Op::Input { .. } | Op::Persistent { .. } | Op::Constant { .. } => unreachable!("leaves are not steps"),
        Op::AdamUpdate { .. } | Op::SgdUpdate { .. } | Op::AccumulateSum => {
            unreachable!("effects run elsewhere")
        }
    }
}

/// `(outer, len, inner)` of a broadcast's output around `axis`.
fn out_split(step: &Step, axis: usize) -> (usize, usize, usize) {
    step.output
        .as_ref()
        .expect("broadcast has an output")
        .shape
        .split_at_axis(axis)
}

/// Takes persistent `r` out of memory so it can be written while other tensors are read.
fn take<T: Real>(mem: &mut Memory<'_, T>, r: &TensorRef) -> Vec<T> {
    match r.location {
        Location::Persistent(id) => std::mem::take(&mut mem.persistents[id.0]),
        Location::Arena { .. } => panic!("effect ops write persistent tensors only"),
    }
}

fn put<T: Real>(mem: &mut Memory<'_, T>, r: &TensorRef, v: Vec<T>) {
    if let Location::Persistent(id) = r.location {
        mem.persistents[id.0] = v;
    }
}

fn run_effect<T: Real>(step: &Step, mem: &mut Memory<'_, T>) {
    let ins = &step.inputs;
    match &step.op {
        Op::AdamUpdate {
            lr,
            beta1,
            beta2,
            epsilon,
        } => {
            let (mut p, mut m, mut v) = (take(mem, &ins[0]), take(mem, &ins[1]), take(mem, &ins[2]));
            let step_count = mem.read(&ins[4])[0];
            optim::adam(
                &mut p,
                &mut m,
                &mut v,
                mem.read(&ins[3]),
                step_count,
                T::of(*lr),
                T::of(*beta1),
                T::of(*beta2),
                T::of(*epsilon),
            );
            put(mem, &ins[0], p);
            put(mem, &ins[1], m);
            put(mem, &ins[2], v);
        }
        Op::SgdUpdate { lr, momentum, nesterov } => {
            let (mut p, mut vel) = (take(mem, &ins[0]), take(mem, &ins[1]));
            optim::sgd(
                &mut p,
                &mut vel,
                mem.read(&ins[2]),
                T::of(*lr),
                T::of(*momentum),
                *nesterov,
            );
            put(mem, &ins[0], p);
            put(mem, &ins[1], vel);
        }
        Op::AccumulateSum => {
            let mut acc = take(mem, &ins[0]);
            optim::accumulate_sum(&mut acc, mem.read(&ins[1]));
            put(mem, &ins[0], acc);
        }
        other => unreachable!("{} is not an effect op", other.name()),
    }
}
