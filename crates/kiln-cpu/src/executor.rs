//! Runs a [`Plan`] step by step on host memory: one arena per plan, persistents shared.

use kiln_graph::{KernelTime, Location, Plan, Shape, Step, StepOp, TensorRef};

use crate::ops::{
    activation, attention, conv, elementwise, embedding, layout, loss, matmul, optim, recurrent, reduce, schedule,
};
use crate::Real;

/// Host memory a plan runs over.
pub struct Memory<'a, T> {
    pub arena: &'a mut [T],
    pub persistents: &'a mut [Vec<T>],
}

impl<T: Real> Memory<'_, T> {
    /// The values of `r`.
    pub fn read(&self, r: &TensorRef) -> &[T] {
        match r.location {
            Location::Arena { offset } => &self.arena[offset..offset + r.len()],
            Location::Persistent(id) => &self.persistents[id.0][..r.len()],
        }
    }

    /// Takes persistent `r` out of memory so it can be written while other tensors are read; an
    /// update writes persistent tensors only (the scheduler checks).
    pub fn take(&mut self, r: &TensorRef) -> Vec<T> {
        match r.location {
            Location::Persistent(id) => std::mem::take(&mut self.persistents[id.0]),
            Location::Arena { .. } => panic!("updates write persistent tensors only"),
        }
    }

    /// Puts back what [`Memory::take`] took.
    pub fn put(&mut self, r: &TensorRef, v: Vec<T>) {
        if let Location::Persistent(id) = r.location {
            self.persistents[id.0] = v;
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
    match &step.op {
        StepOp::MatMul(op) => pure(step, mem, &mut |a, out| matmul::compute(op, a, out)),
        StepOp::Activation(op) => pure(step, mem, &mut |a, out| activation::compute(*op, a, out)),
        StepOp::Elementwise(op) => pure(step, mem, &mut |a, out| elementwise::compute(op, a, out)),
        StepOp::Conv(op) => pure(step, mem, &mut |a, out| conv::compute(op, a, out)),
        StepOp::Layout(op) => pure(step, mem, &mut |a, out| layout::compute(op, a, out)),
        StepOp::Reduce(op) => pure(step, mem, &mut |a, out| reduce::compute(op, a, out)),
        StepOp::Embedding(op) => pure(step, mem, &mut |a, out| embedding::compute(op, a, out)),
        StepOp::Loss(op) => pure(step, mem, &mut |a, out| loss::compute(op, a, out)),
        StepOp::Update(op) => optim::update(op, &step.inputs, mem),
        StepOp::Schedule(op) => pure(step, mem, &mut |a, out| schedule::compute(op, a, out)),
        StepOp::Recurrent(op) => pure(step, mem, &mut |a, out| recurrent::compute(op, a, out)),
        StepOp::Attention(op) => pure(step, mem, &mut |a, out| attention::compute(op, a, out)),
    }
}

/// What a pure op reads: its operands' values and shapes, and its output's shape.
pub struct Args<'a, T> {
    pub x: Vec<&'a [T]>,
    pub step: &'a Step,
}

impl<'a, T> Args<'a, T> {
    /// Operand `k`'s values.
    pub fn x(&self, k: usize) -> &'a [T] {
        self.x[k]
    }

    /// Operand `k`'s shape.
    pub fn shape(&self, k: usize) -> &'a Shape {
        &self.step.inputs[k].shape
    }

    /// Every operand's shape.
    pub fn shapes(&self) -> Vec<&'a Shape> {
        self.step.inputs.iter().map(|t| &t.shape).collect()
    }

    /// The output's shape.
    pub fn out_shape(&self) -> &'a Shape {
        &self.step.output.as_ref().expect("pure ops have an output").shape
    }
}

/// Runs a pure step: borrows its operands and its output slot from memory and hands them to `f`.
fn pure<T: Real>(step: &Step, mem: &mut Memory<'_, T>, f: &mut dyn FnMut(&Args<'_, T>, &mut [T])) {
    let out_ref = step.output.as_ref().expect("pure ops have an output");
    let out_range = out_ref.range();
    assert!(out_range.end <= mem.arena.len(), "output outside the arena");
    let base = mem.arena.as_mut_ptr();
    let x: Vec<&[T]> = step
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
    let out = unsafe { std::slice::from_raw_parts_mut(base.add(out_range.start), out_ref.len()) };
    f(&Args { x, step }, out);
}
