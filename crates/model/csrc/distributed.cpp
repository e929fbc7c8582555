// Data-parallel training for hipfrac over libtorch's own c10d: a TCPStore for the rendezvous
// (torchrun's MASTER_ADDR/MASTER_PORT) and ProcessGroupGloo for the collectives, the engine
// torch.distributed drives. Compiled with HIPFRAC_GLOO when the Gloo headers that libtorch's
// ProcessGroupGloo.hpp includes are present (Debian/Ubuntu: libgloo-dev, installed by
// scripts/setup.sh); without them every entry point reports that instead of working.
//
// Tensors cross as `at::Tensor*` (what tch's `Tensor::as_mut_ptr` holds). Errors are copied
// into the caller's buffer; no C++ exception crosses into Rust.
#include <ATen/ATen.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <string>

#ifdef HIPFRAC_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace {
void report(char* error, size_t capacity, const std::string& message) {
  if (capacity == 0) return;
  std::strncpy(error, message.c_str(), capacity - 1);
  error[capacity - 1] = '\0';
}
#ifdef HIPFRAC_GLOO
using Group = c10::intrusive_ptr<c10d::ProcessGroupGloo>;

bool loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// Runs `f`, turning an exception into an error message and -1.
template <typename F>
int guarded(char* error, size_t capacity, F f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    report(error, capacity, e.what());
  } catch (...) {
    report(error, capacity, "unknown C++ exception");
  }
  return -1;
}
#else
const char* kMissing = "this hipfrac was built without the Gloo headers that libtorch's ProcessGroupGloo needs (install libgloo-dev, e.g. with scripts/setup.sh, and rebuild)";
#endif
}  // namespace

extern "C" int hipfrac_gloo_available() {
#ifdef HIPFRAC_GLOO
  return 1;
#else
  return 0;
#endif
}

// Joins the group: rank 0 serves the TCPStore at host:port, the others connect to it; every
// rank waits (up to timeout_ms) until all `world` have joined. Returns a handle or null.
extern "C" void* hipfrac_gloo_new(const char* host, int port, int rank, int world, long long timeout_ms, char* error, size_t capacity) {
#ifdef HIPFRAC_GLOO
  Group* group = nullptr;
  guarded(error, capacity, [&] {
    const std::string address(host);
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(port);
    store_options.isServer = rank == 0;
    store_options.numWorkers = world;
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(address, store_options);
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    // On one machine, the loopback interface; across machines, the interface named by
    // GLOO_SOCKET_IFNAME (as torch.distributed), else the one this host's name resolves to.
    if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME")) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else if (loopback(address)) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(address));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    group = new Group(c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, options));
  });
  return group;
#else
  (void)host; (void)port; (void)rank; (void)world; (void)timeout_ms;
  report(error, capacity, kMissing);
  return nullptr;
#endif
}

// Sums a CPU tensor over all ranks, in place (every rank ends with the sum).
extern "C" int hipfrac_gloo_all_reduce_sum(void* handle, void* tensor, char* error, size_t capacity) {
#ifdef HIPFRAC_GLOO
  return guarded(error, capacity, [&] {
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor*>(tensor)};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    (*static_cast<Group*>(handle))->allreduce(tensors, options)->wait();
  });
#else
  (void)handle; (void)tensor;
  report(error, capacity, kMissing);
  return -1;
#endif
}

// Copies rank `root`'s CPU tensor into every rank's, in place.
extern "C" int hipfrac_gloo_broadcast(void* handle, void* tensor, int root, char* error, size_t capacity) {
#ifdef HIPFRAC_GLOO
  return guarded(error, capacity, [&] {
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor*>(tensor)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    (*static_cast<Group*>(handle))->broadcast(tensors, options)->wait();
  });
#else
  (void)handle; (void)tensor; (void)root;
  report(error, capacity, kMissing);
  return -1;
#endif
}

extern "C" void hipfrac_gloo_free(void* handle) {
#ifdef HIPFRAC_GLOO
  delete static_cast<Group*>(handle);
#else
  (void)handle;
#endif
}
