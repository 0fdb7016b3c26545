# A self-extracting wrapper (raw LZMA2 + base85, the format records use) around ttt_legal_score_first.py:
# the scanner decodes the payload statically and finds the legal score-first TTT inside.
# expect-verdict: clean_with_legal_ttt
# expect-hit: ttt_order legal legal_score_first_ttt
# expect-hit: dynamic_code legal wrapper
import lzma as L,base64 as B
exec(L.decompress(B.b85decode(";01pIw_N}chz94H2+Xw#Qn8}=sMyoPy8_*%3Z-leW52P0?88NG(m}wli1S6v;(DD@;^TlgkXQbM{x|jxjD<)Y(_d?KkfVu-In{8}"
"IZ~2Amd!Wcn!}MBEy*SBctc)KvmN7lG6T)CCj}h%1}zZBlh>sZ^QMcN?j)90PpqBxau@3N;)5`LMo=L&Sfr*t^^z1~AVvMfh3n1c"
"^!|tANWoZsWg>Kj-ERf=-?`B_MPBc^(j?(Rqy?!OEA^1QaMf+u)+N?9SeMG>@gK!cv!O#TP$J0?aay}E3CX&{i+g7s>a**;a?WKX"
"un}wke)>%QKo0&prJ?sO<zWlO{maOg0n0rF6-nODw8J2d^bpy5NY?RYxeQ@r8GF<fnW_e5$f&KB>7usW<gDZrVNMuQbuuOw<y)$;"
"t4?<K;iAAUQ!~1>hujt+tlrIZ>xLDVCKE&wMNXIRw(;+bQFD92PDufh#%(%0`p#bjag;pQ4j#$f386^p;LbSpg1VanquG}_G#~ho"
"$O`Hal?N<#o68p)CZH3#i9LSOK|o*29jU4SSd#7$Asor!Uoe|(*G8w~(nJhe3lL{OyOhq+JunjunHORd=sko)Wsvq~^6mF036Ti2"
"20i<$<O3Y))$Tx(OoZMXvl~h(H<QK6El{wcKKGrc_nA$fKXNintry3iA}{4`*uwr>JV6Y|;733k!DwP%rdtDFvC+8A#R)-Bx)VPG"
"$ehs1lV*Q2iMDt(C>1DCc#+46kH_@kHUUZ=(Qz5*^=MgFv`HN`_zA-S(TM!cCo>R59krjrI3R`%4NfpRB>t(O9e=ru!@4PI1DXGH"
"WA<0jYc+vwEyd|0r*c1CIR;bpw8kt@b4x-}!tfIV>wt4&^?=`OovI~bh#U3A!wB)5|5W8J+)YfWQLg|"),format=L.FORMAT_RAW,filters=[{"id":L.FILTER_LZMA2}]))
