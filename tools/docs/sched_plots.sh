#!/bin/sh
# sched_plots.sh - regenerate the schedule curves of docs/schedulers.md with `nabla lr-plot`.
# Usage: tools/docs/sched_plots.sh [path/to/nabla]   (default: build/nabla)
set -e
NABLA=${1:-build/nabla}
OUT=docs/img
plot() { # file, then lr-plot flags
    f=$1; shift
    "$NABLA" lr-plot --width 480 --height 240 --out "$OUT/$f.svg" "$@" >/dev/null
}
plot sched-step            --title "StepLR(step_size=30)" --sched step --step-size 30 --gamma 0.1 --steps 100
plot sched-multistep       --title "MultiStepLR(milestones=[30, 80])" --sched multistep --milestones 30,80 --steps 100
plot sched-constant        --title "ConstantLR(factor=0.5, total_iters=40)" --sched constant --factor 0.5 --total-iters 40 --steps 100
plot sched-linear          --title "LinearLR(start_factor=0.05, total_iters=40)" --sched linear --start-factor 0.05 --total-iters 40 --steps 100
plot sched-exponential     --title "ExponentialLR(gamma=0.95)" --sched exponential --gamma 0.95 --steps 100
plot sched-polynomial      --title "PolynomialLR(total_iters=80, power=2)" --sched polynomial --total-iters 80 --power 2 --steps 100
plot sched-cosine          --title "CosineAnnealingLR(T_max=100)" --sched cosine --T-max 100 --steps 100
plot sched-cosine-restarts --title "CosineAnnealingWarmRestarts(T_0=10, T_mult=2)" --sched cosine-restarts --T-0 10 --T-mult 2 --steps 150
plot sched-onecycle        --title "OneCycleLR(max_lr=0.1, total_steps=1000)" --sched onecycle --max-lr 0.1 --steps 1000
plot sched-cyclic          --title "CyclicLR(0.01, 0.1, step_size_up=100, triangular2)" --sched cyclic --base-lr 0.01 --max-lr 0.1 --step-size-up 100 --mode triangular2 --steps 1000
plot sched-plateau         --title "ReduceLROnPlateau(factor=0.5, cooldown=5), flat metric" --sched plateau --patience 10 --cooldown 5 --factor 0.5 --steps 100
plot sched-warmup-cosine   --title "SequentialLR([LinearLR, CosineAnnealingLR], [10])" --sched cosine --warmup 10 --steps 100
plot sched-swalr           --title "CosineAnnealingLR, then SWALR(swa_lr=0.02) from 60" --sched cosine --T-max 100 --swa-start 60 --swa-lr 0.02 --swa-anneal-epochs 10 --steps 100
