// schedule.wgsl — learning-rate schedules, one invocation: the rate for this step from the step
// counter, as Keras 3 computes it (keras/src/optimizers/schedules/learning_rate_schedule.py) at
// iterations = step - 1. The CPU twin is `ScheduleOp::rate` in kiln-graph's ops/schedule.rs.
//
// | binding | name  | learning_rate | piecewise_constant                    |
// |---------|-------|---------------|---------------------------------------|
// | 0       | p     | Params        | Params                                |
// | 1       | out   | rate [1]      | rate [1]                              |
// | 2       | step  | [1]           | [1]                                   |
// | 3       | table |               | boundaries [pieces-1], values [pieces] |

struct Params {
    kind: u32,   // 0 exponential, 1 polynomial, 2 inverse time, 3 cosine, 4 cosine restarts
    flag: u32,   // staircase (exponential, inverse time) or cycle (polynomial)
    pieces: u32,
    pad: u32,
    initial: f32,
    steps: f32,  // decay_steps, or first_decay_steps for restarts
    rate: f32,   // decay_rate
    end: f32,
    power: f32,
    alpha: f32,
    warmup_target: f32,
    warmup: f32, // warmup_steps
    t_mul: f32,
    m_mul: f32,
    pad2: u32,
    pad3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> step: array<f32>;
@group(0) @binding(3) var<storage, read_write> table: array<f32>;

const PI: f32 = 3.14159265358979;

fn stair(x: f32) -> f32 {
    return select(x, floor(x), p.flag != 0u);
}

// The cosine from `start` down to `alpha` of it over `steps`.
fn cosine(i: f32, start: f32) -> f32 {
    let decayed = 0.5 * (1.0 + cos(PI * i / p.steps));
    return start * ((1.0 - p.alpha) * decayed + p.alpha);
}

fn rate_at(i: f32) -> f32 {
    switch p.kind {
        case 0u: {
            return p.initial * pow(p.rate, stair(i / p.steps));
        }
        case 1u: {
            var j = i;
            var steps = p.steps;
            if (p.flag != 0u) {
                steps *= select(ceil(i / steps), 1.0, i == 0.0);
            } else {
                j = min(j, steps);
            }
            return (p.initial - p.end) * pow(1.0 - j / steps, p.power) + p.end;
        }
        case 2u: {
            return p.initial / (1.0 + p.rate * stair(i / p.steps));
        }
        case 3u: {
            let j = min(i, p.steps + p.warmup);
            if (j < p.warmup) {
                return (p.warmup_target - p.initial) * (j / p.warmup) + p.initial;
            }
            return cosine(j - p.warmup, p.warmup_target);
        }
        default: {
            var fraction = i / p.steps;
            var restart: f32;
            if (p.t_mul == 1.0) {
                restart = floor(fraction);
                fraction -= restart;
            } else {
                restart = floor(log(1.0 - fraction * (1.0 - p.t_mul)) / log(p.t_mul));
                fraction = (fraction - (1.0 - pow(p.t_mul, restart)) / (1.0 - p.t_mul)) / pow(p.t_mul, restart);
            }
            let decayed = 0.5 * pow(p.m_mul, restart) * (1.0 + cos(PI * fraction));
            return p.initial * ((1.0 - p.alpha) * decayed + p.alpha);
        }
    }
}

@compute @workgroup_size(1)
fn learning_rate() {
    out[0] = rate_at(max(step[0] - 1.0, 0.0));
}

// values[k] for the k boundaries the step is past (boundaries ascending).
@compute @workgroup_size(1)
fn piecewise_constant() {
    let i = max(step[0] - 1.0, 0.0);
    var k = 0u;
    while (k + 1u < p.pieces && i > table[k]) {
        k++;
    }
    out[0] = table[p.pieces - 1u + k];
}
