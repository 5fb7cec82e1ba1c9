/* The elementwise loops of vmath.h, one line each; vmath.h includes this file once per SIMD
 * variant (VM_LOOP* then define a loop named VM_VARIANT(NAME) compiled with VM_TARGET) and
 * once more for the dispatching entry points. No include guard on purpose.
 *
 * VM_LOOP1(name, T, f(v))       y[i] = f(x[i])             (al = alpha, for elu)
 * VM_LOOP2(name, T, f(u, v))    y[i] = f(a[i], b[i])       (backward: u = dy, v = saved)
 * VM_LOOP2X(name, T, f(u, v))   the same, no FMA contraction (bit for bit as numpy)
 * VM_LOOP3(name, T, f(u, v, w)) y[i] = f(a[i], b[i], c[i])
 * VM_ROWS(T, suffix)            vm_bias_add_<suffix>, vm_bias_grad_<suffix> (vmath.h)
 */

/* the functions themselves (tests/test_vmath.py) */
VM_LOOP1(vm_exp_f32, float, vm_expf(v))
VM_LOOP1(vm_exp_f64, double, vm_exp(v))
VM_LOOP1(vm_expm1_f32, float, vm_expm1f(v))
VM_LOOP1(vm_expm1_f64, double, vm_expm1(v))
VM_LOOP1(vm_log1p_f32, float, vm_log1pf(v))
VM_LOOP1(vm_log1p_f64, double, vm_log1p(v))
VM_LOOP1(vm_erfc_f32, float, vm_erfcf(v))

/* plain arithmetic (csrc/elementwise.pyx): one exactly rounded operation per element, so
 * every level gives numpy's a + b, a - b, a * b, -a bit for bit */
VM_LOOP2X(vm_add_f32, float, u + v)
VM_LOOP2X(vm_add_f64, double, u + v)
VM_LOOP2X(vm_sub_f32, float, u - v)
VM_LOOP2X(vm_sub_f64, double, u - v)
VM_LOOP2X(vm_mul_f32, float, u * v)
VM_LOOP2X(vm_mul_f64, double, u * v)
VM_LOOP1(vm_neg_f32, float, -v)
VM_LOOP1(vm_neg_f64, double, -v)

/* rows: bias add and bias gradient (VM_ROWS in vmath.h) */
VM_ROWS(float, f32)
VM_ROWS(double, f64)

/* activations; with no transcendental function, but here so that they too run in the
 * widest vectors the CPU has (the eager kernels and the captured step alike) */
VM_LOOP1(vm_relu_fwd_f32, float, v <= 0.0f ? 0.0f : v)       /* nan passes through */
VM_LOOP1(vm_relu_fwd_f64, double, v <= 0.0 ? 0.0 : v)
VM_LOOP2(vm_relu_bwd_f32, float, v <= 0.0f ? 0.0f : u)       /* u = dy, v = y */
VM_LOOP2(vm_relu_bwd_f64, double, v <= 0.0 ? 0.0 : u)
/* (-0 or y) + (1 or alpha): exactly 1 or y + alpha as selects of plain values (see
 * loops.pxd's _leaky_relu_fwd); the two conditions are spelled differently on purpose */
VM_LOOP2(vm_elu_bwd_f32, float, u * ((v > 0.0f ? -0.0f : v) + (v <= 0.0f ? al : 1.0f)))
VM_LOOP2(vm_elu_bwd_f64, double, u * ((v > 0.0 ? -0.0 : v) + (v <= 0.0 ? al : 1.0)))
VM_LOOP2(vm_sigmoid_bwd_y_f32, float, (u * v) * (1.0f - v))
VM_LOOP2(vm_sigmoid_bwd_y_f64, double, (u * v) * (1.0 - v))
VM_LOOP2X(vm_tanh_bwd_y_f32, float, u * (1.0f - v * v))   /* 1 - y^2 as numpy rounds it */
VM_LOOP2X(vm_tanh_bwd_y_f64, double, u * (1.0 - v * v))

VM_LOOP1(vm_elu_fwd_f32, float, v > 0.0f ? v : al * vm_expm1f(v))
VM_LOOP1(vm_elu_fwd_f64, double, v > 0.0 ? v : al * vm_expm1(v))
VM_LOOP1(vm_sigmoid_fwd_f32, float, vm_sigmoidf(v))
VM_LOOP1(vm_sigmoid_fwd_f64, double, vm_sigmoid(v))
VM_LOOP2(vm_sigmoid_bwd_x_f32, float, u * vm_sigmoid_grad_f(v))
VM_LOOP2(vm_sigmoid_bwd_x_f64, double, u * vm_sigmoid_grad_d(v))
VM_LOOP1(vm_tanh_fwd_f32, float, vm_tanhf(v))
VM_LOOP1(vm_tanh_fwd_f64, double, vm_tanh(v))
VM_LOOP2(vm_tanh_bwd_x_f32, float, u * vm_tanh_grad_f(v))
VM_LOOP2(vm_tanh_bwd_x_f64, double, u * vm_tanh_grad_d(v))
VM_LOOP1(vm_softplus_fwd_f32, float, vm_softplus_f(v))
VM_LOOP1(vm_softplus_fwd_f64, double, vm_softplus_d(v))
VM_LOOP2(vm_softplus_bwd_f32, float, u * vm_sigmoidf(v))
VM_LOOP2(vm_softplus_bwd_f64, double, u * vm_sigmoid(v))
VM_LOOP1(vm_gelu_fwd_f32, float, vm_gelu_f(v))
VM_LOOP1(vm_gelu_fwd_f64, double, vm_gelu_d(v))
VM_LOOP2(vm_gelu_bwd_f32, float, u * vm_gelu_grad_f(v))
VM_LOOP2(vm_gelu_bwd_f64, double, u * vm_gelu_grad_d(v))
VM_LOOP1(vm_silu_fwd_f32, float, vm_silu_f(v))
VM_LOOP1(vm_silu_fwd_f64, double, vm_silu_d(v))
VM_LOOP2(vm_silu_bwd_f32, float, u * vm_silu_grad_f(v))
VM_LOOP2(vm_silu_bwd_f64, double, u * vm_silu_grad_d(v))
VM_LOOP1(vm_selu_fwd_f32, float,
         v > 0.0f ? (float)VM_SELU_SCALE * v : (float)VM_SELU_SCALE_ALPHA * vm_expm1f(v))
VM_LOOP1(vm_selu_fwd_f64, double, v > 0.0 ? VM_SELU_SCALE * v : VM_SELU_SCALE_ALPHA * vm_expm1(v))
VM_LOOP2X(vm_selu_bwd_f32, float,      /* u = dy, v = y; numpy's bits */
          u * (v > 0.0f ? (float)VM_SELU_SCALE : v + (float)VM_SELU_SCALE_ALPHA))
VM_LOOP2X(vm_selu_bwd_f64, double, u * (v > 0.0 ? VM_SELU_SCALE : v + VM_SELU_SCALE_ALPHA))
VM_LOOP1(vm_mish_fwd_f32, float, vm_mish_f(v))
VM_LOOP1(vm_mish_fwd_f64, double, vm_mish_d(v))
VM_LOOP2(vm_mish_bwd_f32, float, u * vm_mish_grad_f(v))
VM_LOOP2(vm_mish_bwd_f64, double, u * vm_mish_grad_d(v))

/* losses: logits u, targets v (and dloss first in the backward) */
VM_LOOP2(vm_bce_fwd_f32, float, (u > 0.0f ? u : 0.0f) - u * v + vm_log1pf(vm_expf_lo(-fabsf(u))))
VM_LOOP2(vm_bce_fwd_f64, double, (u > 0.0 ? u : 0.0) - u * v + vm_log1p(vm_exp(-fabs(u))))
VM_LOOP3(vm_bce_bwd_f32, float, u * (vm_sigmoidf(v) - w))
VM_LOOP3(vm_bce_bwd_f64, double, u * (vm_sigmoid(v) - w))
