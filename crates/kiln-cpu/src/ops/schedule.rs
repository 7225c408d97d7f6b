//! Learning-rate schedules: the rate for this step, from the step counter. The formula lives in
//! kiln-graph ([`ScheduleOp::rate`], in f64) so the host reads the same rates for its logs.

use kiln_graph::ScheduleOp;

use crate::executor::Args;
use crate::Real;

pub fn compute<T: Real>(op: &ScheduleOp, a: &Args<'_, T>, out: &mut [T]) {
    let step = Real::to_f32(a.x(0)[0]) as f64;
    out[0] = T::of(op.rate(step, |i| Real::to_f32(a.x(1)[i]) as f64) as f32);
}
