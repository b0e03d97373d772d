#!/usr/bin/env python3
"""Writes every document example of Documentation/ as a seed of its fuzzer: JSON objects with a
vdpad schema (profiles, capabilities, saved states) and the quirk sections of quirks.md, into
Tests/Fuzz/corpus/<target>/doc-NN.*. Run it after changing an example; FuzzSeedTests checks."""
import json, re, os, glob
root=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
def blocks(path):
    text=open(path).read()
    return re.findall(r'```[a-z]*\n(.*?)```', text, re.S)
def walk(o):
    if isinstance(o, dict):
        yield o
        for v in o.values(): yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
found={'profiles':[], 'caps':[], 'vq-state':[]}
schemas={'vdpad.profile/v1':'profiles','vdpad.caps/v1':'caps','vdpad.vqstate/v1':'vq-state'}
for md in sorted(glob.glob(root+'/Documentation/*.md')):
    for b in blocks(md):
        for line in [b]+b.splitlines():
            try: o=json.loads(line)
            except Exception: continue
            for d in walk(o):
                k=schemas.get(d.get('schema'))
                if k:
                    s=json.dumps(d, indent=2 if k=='profiles' else None)
                    if s not in found[k]: found[k].append(s)
quirks=[b for b in blocks(root+'/Documentation/quirks.md') if '[quirk ' in b and 'NAME]' not in b]
for k,v in list(found.items())+[('quirks',quirks)]:
    d=f'{root}/Tests/Fuzz/corpus/{k}'; os.makedirs(d, exist_ok=True)
    for old in glob.glob(d+'/doc-*'): os.remove(old)
    print(f'{k}: {len(v)} seeds')
    for i,s in enumerate(v):
        open(f'{d}/doc-{i:02}.'+('conf' if k=='quirks' else 'json'),'w').write(s if s.endswith('\n') else s+'\n')
