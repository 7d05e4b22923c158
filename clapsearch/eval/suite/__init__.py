"""The MS-CLAP paper's benchmark suite: 16 downstream tasks, zero-shot and with a linear probe
on frozen embeddings, in one command (`clapsearch eval suite`).

    tasks.py    the task table: data folder, reader, metric, protocol, prompt, label texts,
                the paper's zero-shot figures
    metrics.py  accuracy, macro mAP, micro F1 (DCASE 2017 Task 4), chance levels
    cache.py    clip embeddings on disk, keyed by model and file content
    embed.py    clips -> embeddings through the cache
    probe.py    Freeze_L1 / Freeze_L3 heads on frozen embeddings
    runner.py   one task / the whole suite -> typed results
    report.py   the paper-layout markdown table and the JSON
"""
