"""PyTorch on the same card, for the figures gpu_bench prints (gpu/check.sh runs both):
f32 matmul n=4096 (TF32 off, then on), the 784-1024-1024-10 MLP SGD step at batch 256
(eager), and 100 tiny elementwise ops (eager launches + one sync)."""
import time

import torch


def timed(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps


print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())
n = 4096
a = torch.rand(n, n, device="cuda") * 0.1
b = torch.rand(n, n, device="cuda") * 0.1
for tf32 in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    s = timed(lambda: a @ b, 20)
    print(f"torch matmul f32 tf32={tf32} n={n}: {2 * n**3 / s / 1e12:.1f} TFLOP/s ({s * 1e3:.3f} ms)")
torch.backends.cuda.matmul.allow_tf32 = False

model = torch.nn.Sequential(
    torch.nn.Linear(784, 1024), torch.nn.ReLU(),
    torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
    torch.nn.Linear(1024, 10),
).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.01)
x_host = torch.rand(256, 784) * 0.1
y_host = torch.arange(256) % 10


def step():
    x, y = x_host.cuda(non_blocking=True), y_host.cuda(non_blocking=True)
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()


s = timed(step, 50)
print(f"torch mlp 784-1024-1024-10 sgd step batch 256 (batch copied from the host): {s * 1e3:.3f} ms")

v = torch.rand(1024, device="cuda")


def chain():
    h = v
    for _ in range(100):
        h = -h
    return h.cpu()


s = timed(chain, 200)
print(f"torch 100 tiny neg ops + copy to host: {s * 1e6:.1f} us")
