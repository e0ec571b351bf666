# Tensor attributes listed in pytorch/pytorch docs/source/tensors.md (autoattribute and autosummary "Tensor.X").
NAMES = """T H mT mH new_tensor new_full new_empty new_ones new_zeros is_cuda is_quantized is_meta device grad ndim real
imag nbytes itemsize abs abs_ absolute absolute_ acos acos_ arccos arccos_ add add_ addbmm addbmm_ addcdiv addcdiv_
addcmul addcmul_ addmm addmm_ sspaddmm addmv addmv_ addr addr_ adjoint allclose amax amin aminmax angle apply_ argmax
argmin argsort argwhere asin asin_ arcsin arcsin_ as_strided atan atan_ arctan arctan_ atan2 atan2_ arctan2 arctan2_
all any backward baddbmm baddbmm_ bernoulli bernoulli_ bfloat16 bincount bitwise_not bitwise_not_ bitwise_and
bitwise_and_ bitwise_or bitwise_or_ bitwise_xor bitwise_xor_ bitwise_left_shift bitwise_left_shift_
bitwise_right_shift bitwise_right_shift_ bmm bool byte broadcast_to cauchy_ ceil ceil_ char cholesky cholesky_inverse
cholesky_solve chunk clamp clamp_ clip clip_ clone contiguous copy_ conj conj_physical conj_physical_ resolve_conj
resolve_neg copysign copysign_ cos cos_ cosh cosh_ corrcoef count_nonzero cov acosh acosh_ arccosh arccosh_ cpu cross
cuda logcumsumexp cummax cummin cumprod cumprod_ cumsum cumsum_ chalf cfloat cdouble const_data_ptr data_ptr deg2rad
dequantize det dense_dim detach detach_ diag diag_embed diagflat diagonal diagonal_scatter fill_diagonal_ fmax fmin
diff digamma digamma_ dim dim_order dist div div_ divide divide_ dot double dsplit element_size eq eq_ equal erf erf_
erfc erfc_ erfinv erfinv_ exp exp_ expm1 expm1_ expand expand_as exponential_ fix fix_ fill_ flatten flip fliplr
flipud float float_power float_power_ floor floor_ floor_divide floor_divide_ fmod fmod_ frac frac_ frexp gather gcd
gcd_ ge ge_ greater_equal greater_equal_ geometric_ geqrf ger get_device gt gt_ greater greater_ half hardshrink
heaviside histc histogram hsplit hypot hypot_ i0 i0_ igamma igamma_ igammac igammac_ index_add_ index_add index_copy_
index_copy index_fill_ index_fill index_put_ index_put index_reduce_ index_reduce index_select indices inner int
int_repr inverse isclose isfinite isinf isposinf isneginf isnan is_contiguous is_complex is_conj is_floating_point
is_inference is_leaf is_pinned is_set_to is_shared is_signed is_sparse istft isreal item kthvalue lcm lcm_ ldexp
ldexp_ le le_ less_equal less_equal_ lerp lerp_ lgamma lgamma_ log log_ logdet log10 log10_ log1p log1p_ log2 log2_
log_normal_ logaddexp logaddexp2 logsumexp logical_and logical_and_ logical_not logical_not_ logical_or logical_or_
logical_xor logical_xor_ logit logit_ long lt lt_ less less_ lu lu_solve as_subclass map_ masked_scatter_
masked_scatter masked_fill_ masked_fill masked_select matmul matrix_power matrix_exp max maximum mean module_load
nanmean median nanmedian min minimum mm smm mode movedim moveaxis msort mul mul_ multiply multiply_ multinomial mv
mvlgamma mvlgamma_ nansum narrow narrow_copy ndimension nan_to_num nan_to_num_ ne ne_ not_equal not_equal_ neg neg_
negative negative_ nelement nextafter nextafter_ nonzero nonzero_static norm normal_ numel numpy orgqr ormqr outer
permute pin_memory pinverse polygamma polygamma_ positive pow pow_ prod put_ qr qscheme quantile nanquantile q_scale
q_zero_point q_per_channel_scales q_per_channel_zero_points q_per_channel_axis rad2deg random_ ravel reciprocal
reciprocal_ record_stream register_hook register_post_accumulate_grad_hook remainder remainder_ renorm renorm_ repeat
repeat_interleave requires_grad requires_grad_ reshape reshape_as resize_ resize_as_ retain_grad retains_grad roll
rot90 round round_ rsqrt rsqrt_ scatter scatter_ scatter_add_ scatter_add scatter_reduce_ scatter_reduce select
select_scatter set_ share_memory_ short sigmoid sigmoid_ sign sign_ signbit sgn sgn_ sin sin_ sinc sinc_ sinh sinh_
asinh asinh_ arcsinh arcsinh_ shape size slogdet slice_scatter softmax sort split sparse_mask sparse_dim sqrt sqrt_
square square_ squeeze squeeze_ std stft storage untyped_storage storage_offset storage_type stride sub sub_ subtract
subtract_ sum sum_to_size svd swapaxes swapdims t t_ tensor_split tile to to_mkldnn take take_along_dim tan tan_ tanh
tanh_ atanh atanh_ arctanh arctanh_ tolist topk to_dense to_sparse to_sparse_csr to_sparse_csc to_sparse_bsr
to_sparse_bsc trace transpose transpose_ triangular_solve tril tril_ triu triu_ true_divide true_divide_ trunc trunc_
type type_as unbind unflatten unfold uniform_ unique unique_consecutive unsqueeze unsqueeze_ values var vdot view
view_as vsplit where xlogy xlogy_ xpu zero_""".split()
