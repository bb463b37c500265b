import json, numpy as np
from minilm_numpy import tok
from sklearn.linear_model import LogisticRegression
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.decomposition import PCA
from scipy.sparse import hstack
S=np.load('static.npy'); vocab=tok.get_vocab()
P=PCA(256).fit(S); S2=P.transform(S)
def sent(texts, M):
    out=[]
    for e in tok.encode_batch(texts):
        ids=[i for i,m in zip(e.ids,e.attention_mask) if m and i not in (101,102,0)]
        v=M[ids].mean(0) if ids else np.zeros(M.shape[1]); out.append(v/ (np.linalg.norm(v)+1e-9))
    return np.array(out)
for s in (1,2,3):
    tr=[json.loads(l) for l in open(f'/tmp/kefu-bot-dev/b77_seed{s}_train.jsonl')]
    te=[json.loads(l) for l in open(f'/tmp/kefu-bot-dev/b77_seed{s}_test.jsonl')]
    trt=[r['text'] for r in tr]; tet=[r['text'] for r in te]; ytr=[r['intent'] for r in tr]; yte=np.array([r['intent'] for r in te])
    res={}
    w=TfidfVectorizer(ngram_range=(1,2),sublinear_tf=True); c=TfidfVectorizer(analyzer='char_wb',ngram_range=(1,4),sublinear_tf=True)
    Ltr=hstack([w.fit_transform(trt),c.fit_transform(trt)]).tocsr(); Lte=hstack([w.transform(tet),c.transform(tet)]).tocsr()
    ml=LogisticRegression(C=20,max_iter=2000).fit(Ltr,ytr); pl=ml.predict_proba(Lte)
    for name,M in (('static384',S),('static256',S2)):
        Xtr=sent(trt,M); Xte=sent(tet,M)
        me=LogisticRegression(C=10,max_iter=2000).fit(Xtr,ytr); pe=me.predict_proba(Xte)
        res[name]=(me.predict(Xte)==yte).mean()
        for a in (0.5,0.7):
            res[f'{name}+lex a{a}']=(me.classes_[(a*pe+(1-a)*pl).argmax(1)]==yte).mean()
    print(s,{k:round(float(v),4) for k,v in res.items()},flush=True)
