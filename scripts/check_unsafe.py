#!/usr/bin/env python3
"""The project's `unsafe` rule: unsafe code only in src/ffi, src/ggml (the C boundaries) and src/vk (ash calls);
every `unsafe { ... }` block has a `// SAFETY:` comment on one of the 6 lines before it (or on its own line),
and every `unsafe fn` that is not an `extern "C"` callback documents `# Safety`."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
allowed = ("src/ffi/", "src/ggml/", "src/vk/")
problems = []
blocks = 0
for path in sorted(root.glob("src/**/*.rs")):
    rel = path.relative_to(root).as_posix()
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        code = line.split("//")[0]
        if re.search(r"\bunsafe\s*\{", code):
            blocks += 1
            if not rel.startswith(allowed):
                problems.append(f"{rel}:{i + 1}: unsafe block outside src/ffi, src/ggml, src/vk")
            window = lines[max(0, i - 6):i + 1]
            if not any("SAFETY:" in w for w in window):
                problems.append(f"{rel}:{i + 1}: unsafe block without a // SAFETY: comment")
        m = re.search(r"\bunsafe\s+(extern\s+\"C\"\s+)?fn\s+(\w+)", code)
        if m and "Option<" not in code and "type " not in code:
            if not rel.startswith(allowed):
                problems.append(f"{rel}:{i + 1}: unsafe fn outside src/ffi, src/ggml, src/vk")
            if not m.group(1):
                doc = lines[max(0, i - 12):i]
                if not any("# Safety" in d for d in doc):
                    problems.append(f"{rel}:{i + 1}: unsafe fn {m.group(2)} without a # Safety section")
        if re.search(r"\bunsafe\s+impl\b", code):
            window = lines[max(0, i - 3):i + 1]
            if not any("SAFETY:" in w for w in window):
                problems.append(f"{rel}:{i + 1}: unsafe impl without a // SAFETY: comment")
print(f"{blocks} unsafe blocks checked")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
