# Sourced by bench/serve.sh and bench/node.sh: COUNT phantom radiographs of 1024 px in
# $WORK/data (split in halves) and, for each preset in $PRESETS, a model trained for one epoch
# at 320 px in $WORK/run-PRESET/best (the weights do not change the time). Needs BIN, DEVICE,
# WORK, PRESETS; COUNT defaults to 24.
"$BIN" phantom --count "${COUNT:-24}" --size 1024 --seed 11 --out "$WORK/data" >/dev/null 2>&1
"$BIN" dataset split "$WORK/data" --ratios 0.5,0.5,0 --seed 1 >/dev/null 2>&1
for preset in $PRESETS; do
  printf 'train = "%s"\nval = "%s"\nout = "%s"\nimage_size = 320\nbatch_size = 4\nepochs = 1\nwarmup_epochs = 0.0\nmosaic = 0.0\nmixup = 0.0\n[model]\npreset = "%s"\n' \
    "$WORK/data/splits/train.csv" "$WORK/data/splits/val.csv" "$WORK/run-$preset" "$preset" > "$WORK/train-$preset.toml"
  "$BIN" train --device "$DEVICE" --config "$WORK/train-$preset.toml" >/dev/null 2>&1
done
