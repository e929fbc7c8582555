// Mixed precision for hipfrac: libtorch's autocast state (ATen/autocast_mode.h), which tch 0.24
// exposes for CUDA fp16 only. Entering sets autocast on `device` (0 = CPU, 1 = CUDA) with
// `dtype` (0 = bfloat16, 1 = float16) and returns the previous state packed as
// enabled | dtype << 1, for `hipfrac_autocast_exit` to restore; nesting is counted so the
// cast cache is cleared when the outermost region ends, as torch.autocast does.
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace {
at::DeviceType device_of(int device) { return device == 1 ? at::kCUDA : at::kCPU; }
at::ScalarType dtype_of(int dtype) { return dtype == 1 ? at::kHalf : at::kBFloat16; }
int code_of(at::ScalarType dtype) { return dtype == at::kHalf ? 1 : 0; }
}  // namespace

extern "C" int hipfrac_autocast_enter(int device, int dtype) {
  const auto type = device_of(device);
  const int previous = (at::autocast::is_autocast_enabled(type) ? 1 : 0) | (code_of(at::autocast::get_autocast_dtype(type)) << 1);
  at::autocast::set_autocast_enabled(type, true);
  at::autocast::set_autocast_dtype(type, dtype_of(dtype));
  at::autocast::increment_nesting();
  return previous;
}

extern "C" void hipfrac_autocast_exit(int device, int previous) {
  const auto type = device_of(device);
  if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
  at::autocast::set_autocast_enabled(type, (previous & 1) != 0);
  at::autocast::set_autocast_dtype(type, dtype_of(previous >> 1));
}

extern "C" int hipfrac_autocast_enabled(int device) {
  return at::autocast::is_autocast_enabled(device_of(device)) ? 1 : 0;
}
