# Top-level names listed by the autosummary blocks of pytorch/pytorch docs/source/torch.md
# (commit d0f1ca1cd0a84b92ff7d073f3408c3941322a052), section by section.
SECTIONS = {
"Tensors": """is_tensor is_storage is_complex is_conj is_floating_point is_nonzero set_default_dtype get_default_dtype
set_default_device get_default_device set_default_tensor_type numel set_printoptions set_flush_denormal""",
"Creation Ops": """tensor sparse_coo_tensor sparse_csr_tensor sparse_csc_tensor sparse_bsr_tensor sparse_bsc_tensor asarray
as_tensor as_strided from_file from_numpy from_dlpack frombuffer zeros zeros_like ones ones_like arange range linspace
logspace eye empty empty_like empty_strided full full_like quantize_per_tensor quantize_per_channel dequantize complex
polar heaviside""",
"Indexing, Slicing, Joining, Mutating Ops": """adjoint argwhere cat concat concatenate conj chunk dsplit column_stack dstack
gather hsplit hstack index_add index_copy index_reduce index_select masked_select movedim moveaxis narrow narrow_copy
nonzero permute reshape row_stack select scatter diagonal_scatter select_scatter slice_scatter scatter_add
scatter_reduce split squeeze stack swapaxes swapdims t take take_along_dim tensor_split tile transpose unbind
unravel_index unsqueeze vsplit vstack where""",
"Accelerators": """Stream Event""",
"Generators": """Generator""",
"Random sampling": """seed manual_seed initial_seed get_rng_state set_rng_state bernoulli multinomial normal poisson rand
rand_like randint randint_like randn randn_like randperm""",
"Serialization": """save load""",
"Parallelism": """get_num_threads set_num_threads get_num_interop_threads set_num_interop_threads""",
"Locally disabling gradient computation": """no_grad enable_grad set_grad_enabled is_grad_enabled inference_mode
is_inference_mode_enabled""",
"Pointwise Ops": """abs absolute acos arccos acosh arccosh add addcdiv addcmul angle asin arcsin asinh arcsinh atan arctan
atanh arctanh atan2 arctan2 bitwise_not bitwise_and bitwise_or bitwise_xor bitwise_left_shift bitwise_right_shift ceil
clamp clip conj_physical copysign cos cosh deg2rad div divide digamma erf erfc erfinv exp exp2 expm1
fake_quantize_per_channel_affine fake_quantize_per_tensor_affine fix float_power floor floor_divide fmod frac frexp
gradient imag ldexp lerp lgamma log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or
logical_xor logit hypot i0 igamma igammac mul multiply mvlgamma nan_to_num neg negative nextafter polygamma positive
pow quantized_batch_norm quantized_max_pool1d quantized_max_pool2d rad2deg real reciprocal remainder round rsqrt
sigmoid sign sgn signbit sin sinc sinh softmax sqrt square sub subtract tan tanh true_divide trunc xlogy""",
"Reduction Ops": """argmax argmin amax amin aminmax all any max min dist logsumexp mean nanmean median nanmedian mode norm
nansum prod quantile nanquantile std std_mean sum unique unique_consecutive var var_mean count_nonzero""",
"Comparison Ops": """allclose argsort eq equal ge greater_equal gt greater isclose isfinite isin isinf isposinf isneginf
isnan isreal kthvalue le less_equal lt less maximum minimum fmax fmin ne not_equal sort topk msort""",
"Spectral Ops": """stft istft bartlett_window blackman_window hamming_window hann_window kaiser_window""",
"Other Operations": """atleast_1d atleast_2d atleast_3d bincount block_diag broadcast_tensors broadcast_to
broadcast_shapes bucketize cartesian_prod cdist clone combinations corrcoef cov cross cummax cummin cumprod cumsum diag
diag_embed diagflat diagonal diff einsum flatten flip fliplr flipud kron rot90 gcd histc histogram histogramdd meshgrid
lcm logcumsumexp ravel renorm repeat_interleave roll searchsorted tensordot trace tril tril_indices triu triu_indices
unflatten vander view_as_real view_as_complex resolve_conj resolve_neg""",
"BLAS and LAPACK Operations": """addbmm addmm addmv addr baddbmm bmm chain_matmul cholesky cholesky_inverse
cholesky_solve dot geqrf ger inner inverse det logdet slogdet lu lu_solve lu_unpack matmul matrix_power matrix_exp mm
mv orgqr ormqr outer pinverse qr svd svd_lowrank pca_lowrank lobpcg trapz trapezoid cumulative_trapezoid
triangular_solve vdot""",
"Utilities": """compiled_with_cxx11_abi result_type can_cast promote_types use_deterministic_algorithms
are_deterministic_algorithms_enabled is_deterministic_algorithms_warn_only_enabled set_deterministic_debug_mode
get_deterministic_debug_mode set_float32_matmul_precision get_float32_matmul_precision set_warn_always
get_device_module is_warn_always_enabled vmap""",
"Symbolic Numbers": """sym_float sym_fresh_size sym_int sym_max sym_min sym_not sym_ite sym_sum SymInt SymFloat SymBool""",
"Control Flow": """cond""",
"Optimizations": """compile""",
}
