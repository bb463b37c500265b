import json, time, numpy as np
from minilm_numpy import embed
from sklearn.linear_model import LogisticRegression
from sklearn.feature_extraction.text import TfidfVectorizer
from scipy.sparse import hstack
rows=[json.loads(l) for l in open('/work/shared/data/bot-dev/banking77_train.jsonl')]
texts=[r['text'] for r in rows]; idx={t:i for i,t in enumerate(texts)}
t=time.time(); E=embed(texts); print('embed 10k: %.1fs'%(time.time()-t), flush=True)
np.save('b77_emb.npy',E)
for s in (1,2,3):
    tr=[json.loads(l) for l in open(f'/tmp/kefu-bot-dev/b77_seed{s}_train.jsonl')]
    te=[json.loads(l) for l in open(f'/tmp/kefu-bot-dev/b77_seed{s}_test.jsonl')]
    Xtr=E[[idx[r['text']] for r in tr]]; Xte=E[[idx[r['text']] for r in te]]
    ytr=[r['intent'] for r in tr]; yte=np.array([r['intent'] for r in te])
    res={}
    for C in (1,10,100):
        m=LogisticRegression(C=C,max_iter=2000).fit(Xtr,ytr); res[f'emb C{C}']=(m.predict(Xte)==yte).mean()
    me=LogisticRegression(C=10,max_iter=2000).fit(Xtr,ytr)
    w=TfidfVectorizer(ngram_range=(1,2),sublinear_tf=True); c=TfidfVectorizer(analyzer='char_wb',ngram_range=(1,4),sublinear_tf=True)
    trt=[r['text'] for r in tr]; tet=[r['text'] for r in te]
    Ltr=hstack([w.fit_transform(trt),c.fit_transform(trt)]).tocsr(); Lte=hstack([w.transform(tet),c.transform(tet)]).tocsr()
    ml=LogisticRegression(C=20,max_iter=2000).fit(Ltr,ytr); res['lex']=(ml.predict(Lte)==yte).mean()
    pe=me.predict_proba(Xte); pl=ml.predict_proba(Lte)
    for a in (0.3,0.5,0.7):
        p=a*pe+(1-a)*pl; res[f'ens a{a}']=(me.classes_[p.argmax(1)]==yte).mean()
    print(s, {k:round(v,4) for k,v in res.items()}, flush=True)
