import json, time, numpy as np
from minilm_numpy import embed, tok
from sklearn.linear_model import LogisticRegression
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.decomposition import PCA
from scipy.sparse import hstack
vocab=tok.get_vocab(); inv={i:t for t,i in vocab.items()}
ids=sorted(inv)
t=time.time()
# one token per text; the tokenizer may split '##xx' pieces, so embed raw strings of the piece
texts=[inv[i].replace('##','') or '.' for i in ids]
S=embed(texts, bs=512); print('distil %.0fs'%(time.time()-t), flush=True)
np.save('static.npy',S)
